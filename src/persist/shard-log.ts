import type { Database, RootDatabase } from 'lmdb';
import type { GroupCommit, StagedDb } from './group-commit.js';
import { ShardEndMarker } from './shard-end.js';
import {
  decodeIndexRecord,
  decodeLogEntry,
  decodeTrimRecord,
  encodeIndexRecord,
  encodeLogEntry,
  encodeTrimRecord,
  type IndexRecord,
  type LogEntry,
  type TrimRecord,
} from './entry-codec.js';

/**
 * A shard's versioned log in LMDB (DESIGN.md "Storage"), four named databases:
 *   log   version → entry (key, timestamp, previous versions, content type, value or tombstone)
 *   index [key, version] → record (timestamp, size, tombstone, previous version of the key);
 *         [key, -1] → trim record once retention trimmed the key
 *   time  timestampUs → highest version with that timestamp (timestamps never decrease with versions,
 *         so the newest entry at or before t is one reverse lookup)
 *   rid   [generation, request id] → first result of an idempotent request
 *
 * Writes are staged in the node's GroupCommit and reach LMDB in order, in transactions pipelined with their syncs;
 * reads see only committed data, so the store keeps an overlay of what is applied but not yet committed. Nothing here knows about the
 * multicast or HTTP.
 */
export type IndexKey = [string, number];
const TRIM_SLOT = -1;

/**
 * A range of a shard's history as raw LMDB records (state transfer): log entries and index records of
 * the versions in the range, the time index of those versions, the trim records of the keys written in
 * it (or of every key for a whole state), request results of the range, and where the copy ends.
 */
export interface ShardExport {
  entries: Array<[version: number, entry: Buffer, key: string, record: Buffer]>;
  times: Array<[timestampUs: number, version: number]>;
  trims: Array<[key: string, record: Buffer]>;
  requests: Array<[generation: number, requestId: string, result: Buffer]>;
  end: { version: number; timestampUs: number };
}

export class ShardLog {
  readonly name: string;
  readonly #log: Database<Buffer, number>;
  readonly #index: Database<Buffer, IndexKey>;
  readonly #time: Database<number, number>;
  readonly #rid: Database<Buffer, [number, string]>;
  readonly #commits: GroupCommit;
  /** Where this copy ends (see shard-end.ts). */
  readonly end: ShardEndMarker;

  constructor(root: RootDatabase, name: string, commits: GroupCommit, meta: Database<unknown, string>) {
    this.name = name;
    this.#commits = commits;
    this.end = new ShardEndMarker(name, meta, commits);
    this.#log = root.openDB<Buffer, number>({ name: `${name}:log`, encoding: 'binary' });
    this.#index = root.openDB<Buffer, IndexKey>({ name: `${name}:index`, encoding: 'binary' });
    this.#time = root.openDB<number, number>({ name: `${name}:time`, encoding: 'ordered-binary' });
    this.#rid = root.openDB<Buffer, [number, string]>({ name: `${name}:rid`, encoding: 'binary' });
  }

  clearSync(): void {
    this.#log.clearSync();
    this.#index.clearSync();
    this.#time.clearSync();
    this.#rid.clearSync();
    this.end.clearSync();
  }

  // ---- state transfer ----

  /**
   * The history after `afterVersion` up to `toVersion` (afterVersion -1: everything, with the trim records
   * of every key). Request results are those of the generations the range can still need.
   */
  exportRange(afterVersion: number, toVersion: number, requestGenerationMin: number): ShardExport {
    const out: ShardExport = { entries: [], times: [], trims: [], requests: [], end: { version: toVersion, timestampUs: 0 } };
    const keys = new Set<string>();
    for (const { key: version, value } of this.#log.getRange({ start: afterVersion + 0.5, end: toVersion + 0.5 })) {
      const entry = Buffer.from(value);
      const key = entry.toString('utf8', 30, 30 + entry.readUInt16LE(26));
      const record = this.#index.getBinary([key, version]);
      if (!record) continue; // removed by retention between the two reads
      out.entries.push([version, entry, key, Buffer.from(record)]);
      keys.add(key);
    }
    // timestamps never decrease with versions: the range's time entries start at its first entry's time
    const first = out.entries[0];
    if (first) {
      for (const { key: ts, value: version } of this.#time.getRange({ start: first[1].readDoubleLE(2) })) {
        if (version > toVersion) break;
        if (version > afterVersion) out.times.push([ts, version]);
      }
      out.end.timestampUs = out.entries[out.entries.length - 1]![1].readDoubleLE(2);
    }
    if (afterVersion < 0) {
      for (const { key, value } of this.#index.getRange({})) if (key[1] === TRIM_SLOT) out.trims.push([key[0], Buffer.from(value)]);
    } else {
      for (const key of keys) {
        const t = this.#index.getBinary([key, TRIM_SLOT]);
        if (t) out.trims.push([key, Buffer.from(t)]);
      }
    }
    for (const { key, value } of this.#rid.getRange({ start: [requestGenerationMin] })) out.requests.push([key[0], key[1], Buffer.from(value)]);
    return out;
  }

  /**
   * Stages an export: a whole state replaces this copy (`replace`), a tail extends it. Versions a trim
   * record says are gone are removed here too.
   */
  importRange(data: ShardExport, replace: boolean): void {
    if (replace) this.clearSync();
    for (const [version, entry, key, record] of data.entries) {
      this.#commits.put(this.#log as unknown as StagedDb, version, entry);
      this.#commits.put(this.#index as unknown as StagedDb, [key, version], record);
    }
    for (const [ts, version] of data.times) this.#commits.put(this.#time as unknown as StagedDb, ts, version);
    for (const [key, record] of data.trims) {
      this.#commits.put(this.#index as unknown as StagedDb, [key, TRIM_SLOT], record);
      const retained = decodeTrimRecord(record).retainedVersion;
      for (const r of this.history(key, 0, retained - 1, 100_000)) this.removeVersion(key, r.version);
    }
    for (const [generation, requestId, result] of data.requests) this.#commits.put(this.#rid as unknown as StagedDb, [generation, requestId], result);
  }


  // ---- writes (staged; durable once NodeStorage.durable() taken after them resolves) ----

  /** Stages a new version: log entry and index record. */
  append(version: number, entry: LogEntry, record: IndexRecord): void {
    this.#commits.put(this.#log as unknown as StagedDb, version, encodeLogEntry(entry));
    this.#commits.put(this.#index as unknown as StagedDb, [entry.key, version], encodeIndexRecord(record));
  }

  /** Queues "the highest version with timestamp t is v" (t's versions only grow). */
  markTime(timestampUs: number, version: number): void {
    this.#commits.put(this.#time as unknown as StagedDb, timestampUs, version);
  }

  /** Queues the removal of one version of a key (retention). */
  removeVersion(key: string, version: number): void {
    this.#commits.remove(this.#log as unknown as StagedDb, version);
    this.#commits.remove(this.#index as unknown as StagedDb, [key, version]);
  }

  putTrimRecord(key: string, record: TrimRecord): void {
    this.#commits.put(this.#index as unknown as StagedDb, [key, TRIM_SLOT], encodeTrimRecord(record));
  }

  removeTimeBefore(timestampUs: number, countMax: number): number {
    let n = 0;
    for (const t of this.#time.getKeys({ end: timestampUs, limit: countMax })) {
      this.#commits.remove(this.#time as unknown as StagedDb, t);
      n++;
    }
    return n;
  }

  putRequestResult(generation: number, requestId: string, result: Buffer): void {
    this.#commits.put(this.#rid as unknown as StagedDb, [generation, requestId], result);
  }

  /** Queues removal of request results of generations < `generationMin`, at most `countMax`; returns how many. */
  removeRequestsBefore(generationMin: number, countMax: number): number {
    let n = 0;
    for (const k of this.#rid.getKeys({ end: [generationMin], limit: countMax })) {
      this.#commits.remove(this.#rid as unknown as StagedDb, k);
      n++;
    }
    return n;
  }

  // ---- reads (committed data) ----

  /** The key's newest index record with version ≤ maxVersion, or null. */
  latest(key: string, maxVersion: number): IndexRecord | null {
    for (const { key: k, value } of this.#index.getRange({ start: [key, maxVersion], end: [key, TRIM_SLOT], reverse: true, limit: 1 })) {
      return decodeIndexRecord(k[1], value);
    }
    return null;
  }

  /** The key's index records with from ≤ version ≤ to, oldest first, at most `limit`. */
  history(key: string, fromVersion: number, toVersion: number, limit: number): IndexRecord[] {
    const out: IndexRecord[] = [];
    const start = Math.max(fromVersion, 0);
    for (const { key: k, value } of this.#index.getRange({ start: [key, start], end: [key, toVersion + 1], limit })) {
      out.push(decodeIndexRecord(k[1], value));
    }
    return out;
  }

  /** The key's newest index records with version ≤ maxVersion, newest first, at most `limit`. */
  newest(key: string, maxVersion: number, limit: number): IndexRecord[] {
    const out: IndexRecord[] = [];
    for (const { key: k, value } of this.#index.getRange({ start: [key, maxVersion], end: [key, TRIM_SLOT], reverse: true, limit })) {
      out.push(decodeIndexRecord(k[1], value));
    }
    return out;
  }

  trimRecord(key: string): TrimRecord | null {
    const b = this.#index.getBinary([key, TRIM_SLOT]);
    return b ? decodeTrimRecord(b) : null;
  }

  /** The log entry of a version (value copied out), or null when absent (never written, or trimmed). */
  entry(version: number): LogEntry | null {
    const fast = this.#log.getBinaryFast(version);
    return fast ? decodeLogEntry(fast, true) : null;
  }

  /** The highest version with timestamp ≤ t, or -1. */
  versionAtTime(timestampUs: number): number {
    for (const { value } of this.#time.getRange({ start: timestampUs, reverse: true, limit: 1 })) return value;
    return -1;
  }

  /** The first key ≥ `from` (exclusive of `from` itself when `after`), or null. */
  nextKey(from: string, after: boolean): string | null {
    const start: IndexKey = after ? [from, Infinity] : [from, TRIM_SLOT];
    for (const k of this.#index.getKeys({ start, limit: 1 })) return k[0];
    return null;
  }

  /** Log entries with version > after, oldest first (for watch replay and log tails). */
  *entriesAfter(afterVersion: number, limit: number): Generator<{ version: number; entry: LogEntry }> {
    for (const { key, value } of this.#log.getRange({ start: afterVersion + 0.5, limit })) {
      yield { version: key, entry: decodeLogEntry(value, false) };
    }
  }

  requestResult(generation: number, requestId: string): Buffer | undefined {
    return this.#rid.getBinary([generation, requestId]);
  }

  /** Newest version in the log and newest timestamp in the time index (recovery). */
  tail(): { version: number; timestampUs: number } {
    let version = -1;
    for (const k of this.#log.getKeys({ reverse: true, limit: 1 })) version = k;
    let timestampUs = 0;
    for (const k of this.#time.getKeys({ reverse: true, limit: 1 })) timestampUs = k;
    return { version, timestampUs };
  }

  /** Number of log entries (for status; an O(1) LMDB stat). */
  entryCount(): number {
    return (this.#log.getStats() as { entryCount: number }).entryCount;
  }
}
