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
 * A chunk of a shard's history as raw LMDB records (state transfer): log entries and index records of
 * versions in the range, the time index of those versions, the trim records of the keys written in it
 * (or of every key for a whole state), request results of the generations still kept, and where the copy
 * ends.
 */
export interface ShardExport {
  entries: Array<[version: number, entry: Buffer, key: string, record: Buffer]>;
  times: Array<[timestampUs: number, version: number]>;
  trims: Array<[key: string, record: Buffer]>;
  requests: Array<[generation: number, requestId: string, result: Buffer]>;
  /** lastTrimVersion: the donor's (see ShardLog.lastTrimVersion). */
  end: { version: number; timestampUs: number; lastTrimVersion?: number };
}

/**
 * Where a chunked export goes on: its phase (log entries in version order, then for a whole state every
 * trim record, then request results) and the last record the previous chunk covered.
 */
export type ExportCursor =
  | { readonly p: 'e'; readonly v: number }
  | { readonly p: 't'; readonly k: IndexKey | null }
  | { readonly p: 'r'; readonly k: readonly [number, string] | null };

/** Budget a scanned record costs a chunk even when it ships nothing (bounds the work per chunk). */
const SCAN_COST_BYTES = 32;

export class ShardLog {
  readonly name: string;
  readonly #log: Database<Buffer, number>;
  readonly #index: Database<Buffer, IndexKey>;
  readonly #time: Database<number, number>;
  readonly #rid: Database<Buffer, [number, string]>;
  readonly #meta: Database<unknown, string>;
  readonly #lastTrimKey: string;
  /** As last staged (undefined: not read yet). */
  #lastTrim: number | undefined = undefined;
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
    this.#meta = meta;
    this.#lastTrimKey = `lasttrim:${name}`;
  }

  clearSync(): void {
    this.#log.clearSync();
    this.#index.clearSync();
    this.#time.clearSync();
    this.#rid.clearSync();
    this.end.clearSync();
    this.#meta.removeSync(this.#lastTrimKey);
    this.#lastTrim = -1;
  }

  // ---- state transfer ----

  /**
   * One chunk of the history after `afterVersion` up to `toVersion` (afterVersion -1: the whole state,
   * with the trim records of every key), from `cursor` (null: the start), holding about `chunkBytes` of
   * records (at least one), and the cursor of the next chunk (null: this is the last). Chunks read what
   * is committed when each is made; versions retention removes in between are left out. Request results
   * go only if `keepRequest` says they belong to the range (this copy may hold results of later writes,
   * which the receiver must still apply).
   */
  exportChunk(
    afterVersion: number,
    toVersion: number,
    requestGenerationMin: number,
    cursor: ExportCursor | null,
    chunkBytes: number,
    keepRequest: (result: Buffer) => boolean,
  ): { data: ShardExport; next: ExportCursor | null } {
    const lastEntry = this.lastEntryIn(afterVersion, toVersion);
    const lastTrimVersion = this.lastTrimVersion();
    const out: ShardExport = {
      entries: [],
      times: [],
      trims: [],
      requests: [],
      end: { version: toVersion, timestampUs: lastEntry?.timestampUs ?? 0, lastTrimVersion },
    };
    // A tail carries the trim records of the keys it writes; if retention trimmed any key after the tail's
    // start (a sweep trims keys nobody wrote), it carries every trim record, as a whole state does.
    const allTrims = afterVersion < 0 || lastTrimVersion > afterVersion;
    let bytes = 0;
    let at: ExportCursor = cursor ?? { p: 'e', v: afterVersion };
    if (at.p === 'e') {
      const keys = new Set<string>();
      const after = at.v;
      let last = after;
      let firstTs: number | null = null;
      for (const { key: version, value } of this.#log.getRange({ start: after + 0.5, end: toVersion + 0.5 })) {
        if (bytes >= chunkBytes) {
          this.#exportTimes(out, firstTs, after, last);
          if (!allTrims) this.#exportTrimsOf(out, keys);
          return { data: out, next: { p: 'e', v: last } };
        }
        last = version;
        const entry = Buffer.from(value);
        firstTs ??= entry.readDoubleLE(2);
        bytes += entry.length + SCAN_COST_BYTES;
        const key = entry.toString('utf8', 30, 30 + entry.readUInt16LE(26));
        const record = this.#index.getBinary([key, version]);
        if (!record) continue; // removed by retention between the two reads
        out.entries.push([version, entry, key, Buffer.from(record)]);
        bytes += record.length + key.length;
        keys.add(key);
      }
      this.#exportTimes(out, firstTs, after, toVersion);
      if (!allTrims) this.#exportTrimsOf(out, keys);
      at = allTrims ? { p: 't', k: null } : { p: 'r', k: null };
    }
    if (at.p === 't') {
      const from = at.k;
      let last = from;
      for (const { key, value } of this.#index.getRange(from === null ? {} : { start: from })) {
        if (from !== null && key[0] === from[0] && key[1] === from[1]) continue;
        if (bytes >= chunkBytes) return { data: out, next: { p: 't', k: last } };
        last = key;
        bytes += SCAN_COST_BYTES;
        if (key[1] !== TRIM_SLOT) continue;
        out.trims.push([key[0], Buffer.from(value)]);
        bytes += key[0].length + value.length;
      }
      at = { p: 'r', k: null };
    }
    const from = at.k;
    let last = from;
    for (const { key, value } of this.#rid.getRange({ start: from === null ? [requestGenerationMin] : [from[0], from[1]] })) {
      if (from !== null && key[0] === from[0] && key[1] === from[1]) continue;
      if (bytes >= chunkBytes) return { data: out, next: { p: 'r', k: last } };
      last = key;
      bytes += SCAN_COST_BYTES;
      if (!keepRequest(value)) continue;
      out.requests.push([key[0], key[1], Buffer.from(value)]);
      bytes += key[1].length + value.length;
    }
    return { data: out, next: null };
  }

  /** The time index entries of versions in (after, upTo], from the time of the chunk's first entry on. */
  #exportTimes(out: ShardExport, firstTs: number | null, after: number, upTo: number): void {
    if (firstTs === null) return;
    // timestamps never decrease with versions: the range's time entries start at its first entry's time
    for (const { key: ts, value: version } of this.#time.getRange({ start: firstTs })) {
      if (version > upTo) break;
      if (version > after) out.times.push([ts, version]);
    }
  }

  /** The trim records of `keys` (a tail's chunk, when no trim happened since the tail's start). */
  #exportTrimsOf(out: ShardExport, keys: ReadonlySet<string>): void {
    for (const key of keys) {
      const t = this.#index.getBinary([key, TRIM_SLOT]);
      if (t) out.trims.push([key, Buffer.from(t)]);
    }
  }

  /**
   * Stages a chunk of an export. The first chunk of a whole state (`replace`) empties this copy first (at
   * once, and marks it incomplete); a tail extends it. Versions a trim record says are gone are removed
   * here too.
   */
  importChunk(data: ShardExport, replace: boolean): void {
    if (replace) {
      const awaitingFrom = this.end.get()?.awaitingFrom ?? [];
      this.clearSync();
      this.end.markComplete(false, awaitingFrom);
    }
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
    // this copy now holds trims made up to the donor's last one
    if (data.end.lastTrimVersion !== undefined) this.noteTrim(data.end.lastTrimVersion);
  }

  /**
   * The last version of the last batch in which retention trimmed a key of this copy (-1: none). A tail
   * that starts before it must carry every trim record: the trim may concern a key the tail does not write.
   */
  lastTrimVersion(): number {
    if (this.#lastTrim === undefined) this.#lastTrim = (this.#meta.get(this.#lastTrimKey) as number | undefined) ?? -1;
    return this.#lastTrim;
  }

  /** Stages "a key was trimmed by a batch ending at `version`" (once per batch, by the store). */
  noteTrim(version: number): void {
    if (version <= this.lastTrimVersion()) return;
    this.#lastTrim = version;
    this.#commits.put(this.#meta as unknown as StagedDb, this.#lastTrimKey, version);
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

  /** The version and time of the last log entry in (after, upTo], or null. */
  lastEntryIn(after: number, upTo: number): { version: number; timestampUs: number } | null {
    for (const { key, value } of this.#log.getRange({ start: upTo + 0.5, end: after + 0.5, reverse: true, limit: 1 })) {
      return { version: key, timestampUs: value.readDoubleLE(2) };
    }
    return null;
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
