import { pack, unpack } from 'msgpackr';
import type { ErrorCode, PoolType } from '../api/types.js';
import { assert, fail } from '../assert.js';
import type { IndexRecord, LogEntry, TrimRecord } from '../persist/entry-codec.js';
import type { ShardLog } from '../persist/shard-log.js';
import type { Delivered, ShardViewInfo } from '../transport/ordered-shard.js';
import type { StoreLimits } from './config.js';
import type { DeleteOp, Op, PutOp, SweepOp } from './ops.js';
import type { Pool, PoolRegistry } from './pools.js';
import { ShardRunner, type ShardRunnerOptions } from './shard-runner.js';

/**
 * One shard of object pools: applies put / delete / compare-and-put / barrier / retention sweep in
 * delivery order, writes each new version to the shard's LMDB log (ShardLog) and serves reads.
 *
 * Reads see every applied version: versions delivered but not yet committed to LMDB live in an overlay
 * (per key, ascending) that is dropped batch by batch once durable. Everything in the overlay is newer than
 * everything in LMDB for the same key, so "newest version ≤ v" checks the overlay first.
 *
 * Behind the overlay, a bounded cache holds each recently written key's newest durable index record
 * (`latestCacheKeysMax` keys, least recently written dropped first), so a write finds the key's current
 * version without an LMDB range lookup.
 *
 * Invariants: versions applied in increasing order; a key's versions in the overlay ascend; the overlay
 * only holds versions newer than the last durable batch; a trimmed version is never returned by a read;
 * a cached record is the key's newest version in LMDB (retention never removes a key's newest version;
 * a state transfer empties the cache).
 */
export type ObjectOpResult =
  | {
      kind: 'written';
      version: number;
      timestampUs: number;
      previousVersion: number;
      previousVersionByKey: number;
      deleted: boolean;
      duplicate: boolean;
    }
  | { kind: 'failed'; code: ErrorCode; message: string; details: Record<string, unknown>; duplicate: boolean }
  | { kind: 'barrier' }
  | { kind: 'swept'; next: string | null; trimmed: number };

/** A version found by a read: its index record, and the entry when it is still in the overlay. */
export interface Found {
  record: IndexRecord;
  entry: LogEntry | null;
}

/** A change, for watch feeds. */
export interface ShardEvent {
  shard: ObjectShard;
  key: string;
  version: number;
  timestampUs: number;
  deleted: boolean;
  size: number;
}

interface Touched {
  keys: string[];
  trims: string[];
  requests: string[];
  removed: string[];
}

interface OverlayVersion {
  record: IndexRecord;
  entry: LogEntry;
}

export interface ObjectShardInfo {
  type: PoolType;
  subgroup: number;
  index: number;
  /** Position among the node's object shards (stable ordering for watch feeds). */
  order: number;
}

export class ObjectShard extends ShardRunner<ObjectOpResult> {
  readonly info: ObjectShardInfo;
  readonly log: ShardLog;
  readonly #pools: PoolRegistry;
  readonly #limits: StoreLimits;
  /** Versions applied but not yet durable, per key, ascending. */
  readonly #overlay = new Map<string, OverlayVersion[]>();
  /** Newest durable index record of recently written keys (insertion order = least recently written first). */
  readonly #newest = new Map<string, IndexRecord>();
  /** Trim records written but not yet durable. */
  readonly #overlayTrims = new Map<string, TrimRecord>();
  /** Versions removed by retention but not yet durable ("key\0version"): LMDB reads must skip them. */
  readonly #overlayRemoved = new Set<string>();
  /** Request results written but not yet durable. */
  readonly #overlayRequests = new Map<string, Buffer>();
  /** Keys and request ids touched per pending batch, to drop from the overlays when durable. */
  #touched: Touched = { keys: [], trims: [], requests: [], removed: [] };
  readonly #pendingTouched: Array<Touched & { lastVersion: number }> = [];
  #lastWriteVersion: number;
  /** Retention trimmed a key in the batch being applied (recorded once per batch, in afterBatch). */
  #trimmedInBatch = false;
  /** Receives every applied change while someone is watching. */
  onChange: ((e: ShardEvent) => void) | null = null;

  constructor(options: ShardRunnerOptions, info: ObjectShardInfo, log: ShardLog, pools: PoolRegistry, limits: StoreLimits) {
    super(options);
    this.info = info;
    this.log = log;
    this.#pools = pools;
    this.#limits = limits;
    this.#lastWriteVersion = log.tail().version;
  }

  protected override onViewChanged(info: ShardViewInfo): void {
    // A copy waiting for its state transfer is incomplete until the transfer is installed (durably).
    if (info.awaitingState) {
      this.log.end.markComplete(false, info.awaitingFrom ?? []);
      this.#newest.clear(); // the transfer rewrites the log
    }
  }

  /** After a state transfer was installed (durably) up to `version`. */
  stateInstalled(version: number): void {
    this.#newest.clear();
    this.#lastWriteVersion = this.log.tail().version;
    this.installedUpTo(version);
  }

  get overlayKeys(): number {
    return this.#overlay.size;
  }

  // ---- apply ----

  protected applyOp(d: Delivered, op: Op): ObjectOpResult {
    switch (op.t) {
      case 'put':
      case 'del':
        return this.#applyWrite(d, op);
      case 'bar':
        return { kind: 'barrier' };
      case 'sweep':
        return this.#applySweep(d, op);
      default:
        throw new Error(`object shard ${this.name} cannot apply op '${op.t}'`);
    }
  }

  #applyWrite(d: Delivered, op: PutOp | DeleteOp): ObjectOpResult {
    const generation = Math.floor(d.timestampUs / (this.#limits.requestIdRetentionMs * 1000));
    if (op.r !== undefined) {
      const first = this.#requestResult(op, op.r, generation, d.timestampUs);
      if (first) return first;
    }
    const result = op.t === 'put' ? this.#put(d, op) : this.#delete(d, op);
    if (op.r !== undefined) {
      // the request's key and kind too: an id reused for another write must not be answered with this result
      const stored = pack({ ts: d.timestampUs, r: result, k: op.k, t: op.t });
      const id = `${generation}\u0000${op.r}`;
      this.#overlayRequests.set(id, stored);
      this.#touched.requests.push(id);
      this.log.putRequestResult(generation, op.r, stored);
    }
    return result;
  }

  /**
   * Whether a stored request result belongs to the history up to `version` (whose last write has time
   * `timestampUs`): a written result by its version, a refused one by its time.
   */
  static requestResultUpTo(raw: Buffer, version: number, timestampUs: number): boolean {
    const saved = unpack(raw) as { ts: number; r: ObjectOpResult };
    return saved.r.kind === 'written' ? saved.r.version <= version : saved.ts <= timestampUs;
  }

  /**
   * The first result of a request id seen within the retention window, marked duplicate; a refusal when the
   * id was first used for a write of another key or kind (a retry repeats the same request).
   */
  #requestResult(op: PutOp | DeleteOp, requestId: string, generation: number, nowUs: number): ObjectOpResult | null {
    for (const g of [generation, generation - 1]) {
      const raw = this.#overlayRequests.get(`${g}\u0000${requestId}`) ?? this.log.requestResult(g, requestId);
      if (!raw) continue;
      const saved = unpack(raw) as { ts: number; r: ObjectOpResult; k?: string; t?: string };
      if (nowUs - saved.ts > this.#limits.requestIdRetentionMs * 1000) continue;
      if (saved.k !== undefined && (saved.k !== op.k || saved.t !== op.t)) {
        const first = `${saved.t === 'del' ? 'a delete' : 'a put'} of ${saved.k}`;
        return failed('bad_parameter', `request id '${requestId}' was first used for ${first}: a retry must repeat the same request`, {
          request_id: requestId,
          first_key: saved.k,
        });
      }
      return { ...saved.r, duplicate: true } as ObjectOpResult;
    }
    return null;
  }

  #put(d: Delivered, op: PutOp): ObjectOpResult {
    const current = this.latest(op.k, Infinity);
    const live = current !== null && !current.record.deleted;
    if (op.m !== undefined && (!live || current.record.version !== op.m)) {
      return failed('version_mismatch', `If-Match ${op.m} does not match the current version of ${op.k}`, {
        current_version: live ? current.record.version : null,
      });
    }
    if (op.n !== undefined && live) {
      return failed('version_mismatch', `${op.k} exists (If-None-Match: *)`, { current_version: current.record.version });
    }
    return this.#append(d, op.k, op.v, op.c, false, current);
  }

  #delete(d: Delivered, op: DeleteOp): ObjectOpResult {
    const current = this.latest(op.k, Infinity);
    if (current === null) return failed('not_found', `no object ${op.k}`, {});
    if (current.record.deleted) return failed('deleted', `${op.k} is already deleted`, { version: current.record.version });
    if (op.m !== undefined && current.record.version !== op.m) {
      return failed('version_mismatch', `If-Match ${op.m} does not match the current version of ${op.k}`, {
        current_version: current.record.version,
      });
    }
    return this.#append(d, op.k, EMPTY, '', true, current);
  }

  #append(d: Delivered, key: string, value: Uint8Array, contentType: string, deleted: boolean, current: Found | null): ObjectOpResult {
    if (!(d.version > this.#lastWriteVersion)) fail(`${this.name}: version ${d.version} not above last write ${this.#lastWriteVersion}`);
    const previousVersionByKey = current ? current.record.version : -1;
    const entry: LogEntry = {
      key,
      timestampUs: d.timestampUs,
      previousVersion: this.#lastWriteVersion,
      previousVersionByKey,
      deleted,
      contentType,
      value,
    };
    const ordinal = current ? current.record.ordinal + 1 : 1;
    const record: IndexRecord = { version: d.version, timestampUs: d.timestampUs, previousVersionByKey, size: value.byteLength, deleted, ordinal };
    this.log.append(d.version, entry, record);
    let versions = this.#overlay.get(key);
    if (!versions) this.#overlay.set(key, (versions = []));
    versions.push({ record, entry });
    this.#touched.keys.push(key);
    const mark = this.#markTimePending;
    if (mark && mark.timestampUs !== d.timestampUs) this.log.markTime(mark.timestampUs, mark.version);
    this.#markTimePending = d;
    this.#lastWriteVersion = d.version;
    const pool = this.#pools.forKey(key);
    if (pool?.retain?.versions !== undefined) this.#trimToCount(key, pool.retain.versions, ordinal);
    this.onChange?.({ shard: this, key, version: d.version, timestampUs: d.timestampUs, deleted, size: value.byteLength });
    return {
      kind: 'written',
      version: d.version,
      timestampUs: d.timestampUs,
      previousVersion: entry.previousVersion,
      previousVersionByKey,
      deleted,
      duplicate: false,
    };
  }

  /**
   * The newest write so far with the current timestamp. Timestamps never decrease along versions, so one
   * time-index entry per distinct timestamp (its newest write) keeps "highest version with timestamp ≤ t"
   * exact for every t while writing far fewer entries than one per version.
   */
  #markTimePending: Delivered | null = null;

  protected override afterBatch(lastVersion: number, lastTimestampUs: number): void {
    const d = this.#markTimePending;
    if (d) {
      this.log.markTime(d.timestampUs, d.version);
      this.#markTimePending = null;
    }
    this.log.end.mark(lastVersion, lastTimestampUs);
    if (this.#trimmedInBatch) {
      this.log.noteTrim(lastVersion);
      this.#trimmedInBatch = false;
    }
    this.#pendingTouched.push({ lastVersion, ...this.#touched });
    this.#touched = { keys: [], trims: [], requests: [], removed: [] };
  }

  protected override onDurable(lastVersion: number): void {
    while (this.#pendingTouched.length > 0 && this.#pendingTouched[0]!.lastVersion <= lastVersion) {
      const t = this.#pendingTouched.shift()!;
      for (const key of t.keys) {
        const versions = this.#overlay.get(key);
        if (!versions) continue; // trimmed away, or dropped by an earlier batch
        let n = 0;
        while (n < versions.length && versions[n]!.record.version <= t.lastVersion) n++;
        if (n > 0) this.#remember(key, versions[n - 1]!.record);
        if (n === versions.length) this.#overlay.delete(key);
        else if (n > 0) versions.splice(0, n);
      }
      for (const key of t.trims) this.#overlayTrims.delete(key);
      for (const id of t.requests) this.#overlayRequests.delete(id);
      for (const id of t.removed) this.#overlayRemoved.delete(id);
    }
  }

  /** Caches `record` as the key's newest durable version. */
  #remember(key: string, record: IndexRecord): void {
    const max = this.#limits.latestCacheKeysMax;
    if (max === 0) return;
    this.#newest.delete(key);
    this.#newest.set(key, record);
    if (this.#newest.size > max) this.#newest.delete(this.#newest.keys().next().value!);
  }

  // ---- retention ----

  /**
   * Count retention at write time: versions with ordinal ≤ newest - keep go, oldest first, at most
   * trimPerWriteMax per write (later writes and the sweep take the rest). Reads only the oldest versions.
   */
  #trimToCount(key: string, keep: number, newestOrdinal: number): void {
    const cutoff = newestOrdinal - keep;
    if (cutoff <= 0) return;
    const oldest = this.#oldestVersions(key, this.#limits.trimPerWriteMax + 1);
    let n = 0;
    while (n < oldest.length - 1 && n < this.#limits.trimPerWriteMax && oldest[n]!.ordinal <= cutoff) n++;
    if (n > 0) this.#trim(key, oldest[n]!, oldest.slice(0, n), oldest[0]!);
  }

  #applySweep(_d: Delivered, op: SweepOp): ObjectOpResult {
    let visited = 0;
    let trimmed = 0;
    let last: string | null = null;
    let more = false;
    for (const key of this.#keysInOrder(op.p + '/', op.from, true)) {
      if (visited >= op.max) {
        more = true;
        break;
      }
      trimmed += this.#trimByAge(key, op.cut);
      visited++;
      last = key;
    }
    // the next sweep resumes strictly after the last key visited
    return { kind: 'swept', next: more ? last : null, trimmed };
  }

  /**
   * Age retention: every version older than the one current at `cutUs` goes, oldest first, bounded per
   * call. Among the oldest versions read, the newest with timestamp ≤ cut is kept (it may be the value
   * current at the cut, or an older one if more remain beyond the window: then the next sweep goes on).
   */
  #trimByAge(key: string, cutUs: number): number {
    const oldest = this.#oldestVersions(key, this.#limits.trimPerWriteMax + 1);
    let atCut = 0;
    while (atCut < oldest.length && oldest[atCut]!.timestampUs <= cutUs) atCut++;
    const n = atCut - 1; // versions before the last one at or before the cut
    if (n <= 0) return 0;
    this.#trim(key, oldest[n]!, oldest.slice(0, n), oldest[0]!);
    return n;
  }

  /** Removes `gone` (ascending, all older than `kept`) and records the trim point. */
  #trim(key: string, kept: IndexRecord, gone: IndexRecord[], oldestNow: IndexRecord): void {
    const previous = this.trimRecord(key);
    const record: TrimRecord = {
      oldestVersion: previous ? previous.oldestVersion : oldestNow.version,
      oldestTimestampUs: previous ? previous.oldestTimestampUs : oldestNow.timestampUs,
      retainedVersion: kept.version,
      retainedTimestampUs: kept.timestampUs,
    };
    const versions = this.#overlay.get(key);
    for (const g of gone) {
      if (g.version >= kept.version) fail(`${this.name}: trimming ${key}@${g.version} at or above the kept ${kept.version}`);
      this.log.removeVersion(key, g.version);
      if (this.#newest.get(key)?.version === g.version) this.#newest.delete(key);
      const id = `${key}\u0000${g.version}`;
      this.#overlayRemoved.add(id);
      this.#touched.removed.push(id);
      if (versions) {
        const i = versions.findIndex((v) => v.record.version === g.version);
        if (i >= 0) versions.splice(i, 1);
      }
    }
    if (versions && versions.length === 0) this.#overlay.delete(key);
    this.log.putTrimRecord(key, record);
    this.#trimmedInBatch = true;
    this.#overlayTrims.set(key, record);
    this.#touched.trims.push(key);
  }

  /** The key's oldest versions, ascending, at most `limit`: LMDB's (minus pending removals), then the overlay's. */
  #oldestVersions(key: string, limit: number): IndexRecord[] {
    const out: IndexRecord[] = [];
    const removed = this.#overlayRemoved.size > 0;
    // pending removals may hide up to as many LMDB records as there are: read that many more
    const extra = removed ? Math.min(this.#overlayRemoved.size, 4 * limit) : 0;
    for (const r of this.log.history(key, 0, Number.MAX_SAFE_INTEGER, limit + extra)) {
      if (removed && this.#overlayRemoved.has(`${key}\u0000${r.version}`)) continue;
      out.push(r);
      if (out.length >= limit) return out;
    }
    const versions = this.#overlay.get(key);
    if (versions) {
      const after = out.length > 0 ? out[out.length - 1]!.version : -1;
      for (const v of versions) {
        if (out.length >= limit) break;
        if (v.record.version > after) out.push(v.record);
      }
    }
    return out;
  }

  // ---- reads ----

  /** The key's newest version ≤ maxVersion, from the overlay or LMDB; null if none. */
  latest(key: string, maxVersion: number): Found | null {
    const versions = this.#overlay.get(key);
    if (versions) {
      for (let i = versions.length - 1; i >= 0; i--) {
        const v = versions[i]!;
        if (v.record.version <= maxVersion) return { record: v.record, entry: v.entry };
      }
    }
    const cached = this.#newest.get(key);
    if (cached && cached.version <= maxVersion) return { record: cached, entry: null };
    const record = this.log.latest(key, maxVersion);
    return record ? { record, entry: null } : null;
  }

  trimRecord(key: string): TrimRecord | null {
    return this.#overlayTrims.get(key) ?? this.log.trimRecord(key);
  }

  /** The full entry (with value) of a found version. */
  entryOf(found: Found): LogEntry | null {
    return found.entry ?? this.log.entry(found.record.version);
  }

  /** History of a key: versions from..to ascending (overlay included), at most limit. */
  history(key: string, fromVersion: number, toVersion: number, limit: number): IndexRecord[] {
    const out = this.log.history(key, fromVersion, toVersion, limit);
    const versions = this.#overlay.get(key);
    if (versions && out.length < limit) {
      const after = out.length > 0 ? out[out.length - 1]!.version : fromVersion - 1;
      for (const v of versions) {
        if (out.length >= limit) break;
        if (v.record.version > after && v.record.version >= fromVersion && v.record.version <= toVersion) out.push(v.record);
      }
    }
    return out;
  }

  /**
   * Keys with prefix, in order, after `afterKey` (exclusive; '' = from the start), whose newest version
   * ≤ maxVersion exists and is not a delete. Overlay included when `overlay`. At most `limit`.
   */
  listKeys(prefix: string, afterKey: string, maxVersion: number, limit: number, overlay: boolean): Array<{ key: string; found: Found }> {
    const out: Array<{ key: string; found: Found }> = [];
    if (limit <= 0) return out;
    for (const key of this.#keysInOrder(prefix, afterKey, overlay)) {
      let found: Found | null;
      if (overlay) found = this.latest(key, maxVersion);
      else {
        const record = this.log.latest(key, maxVersion);
        found = record ? { record, entry: null } : null;
      }
      if (found && !found.record.deleted) {
        out.push({ key, found });
        if (out.length >= limit) break;
      }
    }
    return out;
  }

  /** Keys with `prefix` after `afterKey` ('' = from the start) in order: LMDB's, merged with the overlay's. */
  *#keysInOrder(prefix: string, afterKey: string, overlay: boolean): Generator<string> {
    const inPrefix = (k: string | null): string | null => (k !== null && k.startsWith(prefix) ? k : null);
    let logKey = inPrefix(afterKey === '' ? this.log.nextKey(prefix, false) : this.log.nextKey(afterKey, true));
    const extra = overlay ? [...this.#overlay.keys()].filter((k) => k.startsWith(prefix) && k > afterKey).sort() : [];
    let ei = 0;
    for (;;) {
      const overlayKey = ei < extra.length ? extra[ei]! : null;
      let key: string;
      if (logKey === null && overlayKey === null) return;
      if (logKey === null || (overlayKey !== null && overlayKey < logKey)) {
        key = overlayKey!;
        ei++;
      } else {
        key = logKey;
        if (overlayKey === logKey) ei++;
        logKey = inPrefix(this.log.nextKey(logKey, true));
      }
      yield key;
    }
  }
}

const EMPTY = new Uint8Array(0);


function failed(code: ErrorCode, message: string, details: Record<string, unknown>): ObjectOpResult {
  return { kind: 'failed', code, message, details, duplicate: false };
}

export type { Pool };
