import { assert, fail } from '../assert.js';

/**
 * Binary layouts of what a shard keeps in LMDB (little-endian). Hand-rolled rather than msgpack because
 * they sit on the write and read hot paths and have fixed shapes.
 *
 * Log entry (version → entry):
 *   0  u8  format (1)        1 u8 flags (bit 0: tombstone)
 *   2  f64 timestampUs       10 f64 previousVersion (previous write in the shard, -1 none)
 *   18 f64 previousVersionByKey (-1 none)
 *   26 u16 key length        28 u16 content-type length
 *   30 key bytes, content-type bytes, value bytes (to the end)
 *
 * Per-key index record ([key, version] → record), everything a history or listing needs without the log:
 *   0 u8 flags   1 f64 timestampUs   9 f64 previousVersionByKey   17 u32 size   21 f64 ordinal   (29 bytes)
 *   ordinal: 1 for a key's first version, +1 for each next one (deletes included); count retention uses it
 *
 * Trim record ([key, -1] → record), present once retention trimmed a key:
 *   0 f64 oldest version ever   8 f64 its timestamp   16 f64 first retained version   24 f64 its timestamp
 */

export const FLAG_TOMBSTONE = 1;
const FORMAT = 1;
const LOG_HEADER_BYTES = 30;
export const INDEX_RECORD_BYTES = 29;
const TRIM_RECORD_BYTES = 32;
const U16_MAX = 0xffff;

export interface LogEntry {
  key: string;
  timestampUs: number;
  previousVersion: number;
  previousVersionByKey: number;
  deleted: boolean;
  contentType: string;
  /** The value bytes (empty for a tombstone). */
  value: Uint8Array;
}

export interface IndexRecord {
  version: number;
  timestampUs: number;
  previousVersionByKey: number;
  size: number;
  deleted: boolean;
  /** 1 for the key's first version, one more for each later one. */
  ordinal: number;
}

export interface TrimRecord {
  oldestVersion: number;
  oldestTimestampUs: number;
  retainedVersion: number;
  retainedTimestampUs: number;
}

export function encodeLogEntry(e: LogEntry): Buffer {
  const keyLen = Buffer.byteLength(e.key);
  const typeLen = Buffer.byteLength(e.contentType);
  assert(keyLen <= U16_MAX && typeLen <= U16_MAX, 'key or content type too long for the log format');
  const out = Buffer.allocUnsafe(LOG_HEADER_BYTES + keyLen + typeLen + e.value.byteLength);
  out[0] = FORMAT;
  out[1] = e.deleted ? FLAG_TOMBSTONE : 0;
  out.writeDoubleLE(e.timestampUs, 2);
  out.writeDoubleLE(e.previousVersion, 10);
  out.writeDoubleLE(e.previousVersionByKey, 18);
  out.writeUInt16LE(keyLen, 26);
  out.writeUInt16LE(typeLen, 28);
  out.write(e.key, LOG_HEADER_BYTES, keyLen, 'utf8');
  out.write(e.contentType, LOG_HEADER_BYTES + keyLen, typeLen, 'latin1');
  out.set(e.value, LOG_HEADER_BYTES + keyLen + typeLen);
  return out;
}

/** Decodes a log entry; the value is copied out of `buf` only when `copyValue` (buf may be reused). */
export function decodeLogEntry(buf: Buffer, copyValue: boolean): LogEntry {
  if (buf[0] !== FORMAT) fail(`unknown log entry format ${buf[0]}`);
  const keyLen = buf.readUInt16LE(26);
  const typeLen = buf.readUInt16LE(28);
  const valueStart = LOG_HEADER_BYTES + keyLen + typeLen;
  const valueView = buf.subarray(valueStart, buf.length);
  return {
    key: buf.toString('utf8', LOG_HEADER_BYTES, LOG_HEADER_BYTES + keyLen),
    timestampUs: buf.readDoubleLE(2),
    previousVersion: buf.readDoubleLE(10),
    previousVersionByKey: buf.readDoubleLE(18),
    deleted: (buf[1]! & FLAG_TOMBSTONE) !== 0,
    contentType: buf.toString('latin1', LOG_HEADER_BYTES + keyLen, valueStart),
    value: copyValue ? Buffer.from(valueView) : valueView,
  };
}

export function encodeIndexRecord(r: Omit<IndexRecord, 'version'>): Buffer {
  const out = Buffer.allocUnsafe(INDEX_RECORD_BYTES);
  out[0] = r.deleted ? FLAG_TOMBSTONE : 0;
  out.writeDoubleLE(r.timestampUs, 1);
  out.writeDoubleLE(r.previousVersionByKey, 9);
  out.writeUInt32LE(r.size, 17);
  out.writeDoubleLE(r.ordinal, 21);
  return out;
}

export function decodeIndexRecord(version: number, buf: Uint8Array): IndexRecord {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    version,
    deleted: (b[0]! & FLAG_TOMBSTONE) !== 0,
    timestampUs: b.readDoubleLE(1),
    previousVersionByKey: b.readDoubleLE(9),
    size: b.readUInt32LE(17),
    ordinal: b.readDoubleLE(21),
  };
}

export function encodeTrimRecord(r: TrimRecord): Buffer {
  const out = Buffer.allocUnsafe(TRIM_RECORD_BYTES);
  out.writeDoubleLE(r.oldestVersion, 0);
  out.writeDoubleLE(r.oldestTimestampUs, 8);
  out.writeDoubleLE(r.retainedVersion, 16);
  out.writeDoubleLE(r.retainedTimestampUs, 24);
  return out;
}

export function decodeTrimRecord(buf: Uint8Array): TrimRecord {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    oldestVersion: b.readDoubleLE(0),
    oldestTimestampUs: b.readDoubleLE(8),
    retainedVersion: b.readDoubleLE(16),
    retainedTimestampUs: b.readDoubleLE(24),
  };
}
