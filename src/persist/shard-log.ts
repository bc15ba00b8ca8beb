import type { Database, RootDatabase } from 'lmdb';
import type { GroupCommit, StagedDb } from './group-commit.js';
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
 * Writes are staged in the node's GroupCommit and reach LMDB in order, one transaction per disk sync;
 * reads see only committed data, so the store keeps an overlay of what is applied but not yet committed. Nothing here knows about the
 * multicast or HTTP.
 */
export type IndexKey = [string, number];
const TRIM_SLOT = -1;

export class ShardLog {
  readonly name: string;
  readonly #log: Database<Buffer, number>;
  readonly #index: Database<Buffer, IndexKey>;
  readonly #time: Database<number, number>;
  readonly #rid: Database<Buffer, [number, string]>;
  readonly #commits: GroupCommit;

  constructor(root: RootDatabase, name: string, commits: GroupCommit) {
    this.name = name;
    this.#commits = commits;
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
