import { SquallError } from '../api/errors.js';
import { assertKey, assertPoolPath } from '../api/keys.js';
import { shardOf } from '../api/shard-hash.js';
import type { Durability, HistoryEntry, KeyEntry, PoolSpec, PoolType, WriteResult } from '../api/types.js';
import { fail } from '../assert.js';
import type { Logger } from '../log.js';
import type { IndexRecord, LogEntry } from '../persist/entry-codec.js';
import type { NodeStorage } from '../persist/node-storage.js';
import type { ClockUs } from '../transport/clock.js';
import type { OrderedShard } from '../transport/ordered-shard.js';
import type { Layout, StoreLimits } from './config.js';
import { ObjectShard, type Found, type ObjectOpResult } from './object-shard.js';
import type { DeleteOp, PutOp } from './ops.js';
import { MetadataShard, PoolRegistry, poolInfo, type Pool, type PoolOpResult } from './pools.js';
import type { Applied } from './shard-runner.js';
import { WatchHub } from './watch.js';

/**
 * Cascade semantics over shards: key → pool → shard routing, writes with compare-and-put, idempotent
 * retries and durability levels, and reads (current, stable, by version, by time, linearizable), history,
 * key listings (current, at a version, at a time, as one cut across the pool's shards) and watch feeds.
 * Knows nothing of sockets or HTTP: the ordered streams come from `openChannel`.
 */
export interface StoreOptions {
  nodeId: number;
  layout: Layout;
  limits: StoreLimits;
  storage: NodeStorage;
  clock: ClockUs;
  logger: Logger;
  /** The ordered stream of a shard (one-member sequencer on a single node, the multicast in a cluster). */
  openChannel(name: string, lastTimestampUs: number): OrderedShard;
}

export interface WriteOptions {
  ifMatch?: number;
  ifNoneMatch?: boolean;
  durability?: Durability;
  requestId?: string;
  contentType?: string;
}

export interface ReadOptions {
  version?: number;
  atUs?: number;
  stable?: boolean;
  linearizable?: boolean;
  waitMs?: number;
}

export interface ReadResult {
  key: string;
  version: number;
  timestampUs: number;
  previousVersionByKey: number;
  contentType: string;
  value: Uint8Array;
  shard: number;
}

export interface ListOptions {
  prefix?: string;
  atUs?: number;
  version?: number;
  stable?: boolean;
  limit?: number;
  cursor?: string;
  values?: boolean;
  waitMs?: number;
}

export interface HistoryOptions {
  from?: number;
  to?: number;
  limit?: number;
}

interface ListCursor {
  /** Last key returned. */
  k: string;
  /** Per shard, the version the listing is pinned at. */
  v: number[];
  /** Whether the overlay of delivered-not-durable versions is read (current and version listings). */
  o: boolean;
}

const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

export class Store {
  readonly nodeId: number;
  readonly layout: Layout;
  readonly limits: StoreLimits;
  readonly storage: NodeStorage;
  readonly pools: PoolRegistry;
  readonly metadata: MetadataShard;
  /** shards[type][subgroup][index] */
  readonly shards: Record<PoolType, ObjectShard[][]>;
  readonly allShards: ObjectShard[];
  readonly watch: WatchHub;
  readonly #clock: ClockUs;
  readonly #logger: Logger;
  readonly #sweepCursors = new Map<string, string>();
  readonly #sweepsRunning = new Set<string>();
  #sweepTimer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(options: StoreOptions) {
    this.nodeId = options.nodeId;
    this.layout = options.layout;
    this.limits = options.limits;
    this.storage = options.storage;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.pools = new PoolRegistry(options.layout);
    const loaded = MetadataShard.load(options.storage, this.pools);
    const runnerBase = {
      storage: options.storage,
      nodeId: options.nodeId,
      pendingOpsMax: options.limits.shardPendingOpsMax,
      waitersMax: options.limits.shardPendingOpsMax,
    };
    const poolsTs = Math.max(0, ...this.pools.list().map((p) => p.timestampUs));
    this.metadata = new MetadataShard(
      { ...runnerBase, channel: options.openChannel('metadata/0/0', poolsTs), durability: 'durable', logger: options.logger.child({ shard: 'metadata/0/0' }) },
      this.pools,
    );
    const allShards: ObjectShard[] = [];
    const build = (type: PoolType): ObjectShard[][] =>
      options.layout[type].map((sg, subgroup) =>
        Array.from({ length: sg.shards }, (_, index) => {
          const name = `${type}/${subgroup}/${index}`;
          const log = options.storage.shard(name, type === 'volatile');
          const shard = new ObjectShard(
            {
              ...runnerBase,
              channel: options.openChannel(name, log.tail().timestampUs),
              durability: type === 'persistent' ? 'durable' : 'committed',
              logger: options.logger.child({ shard: name }),
            },
            { type, subgroup, index, order: allShards.length },
            log,
            this.pools,
            options.limits,
          );
          allShards.push(shard);
          return shard;
        }),
      );
    this.shards = { persistent: build('persistent'), volatile: build('volatile') };
    this.allShards = allShards;
    this.watch = new WatchHub(allShards, options.limits, options.logger.child({ part: 'watch' }));
    this.#logger.info({ pools: loaded, shards: allShards.length }, 'store opened');
    this.#sweepTimer = setInterval(() => this.#sweep(), options.limits.retentionSweepMs);
    this.#sweepTimer.unref();
  }

  // ---- pools ----

  async createPool(path: string, spec: PoolSpec): Promise<{ created: boolean; pool: Pool }> {
    assertPoolPath(path);
    const subgroup = spec.subgroup ?? 0;
    if (this.pools.shardsOf(spec.type, subgroup) === undefined) {
      throw new SquallError('bad_parameter', `no ${spec.type} subgroup ${subgroup}: the layout has ${this.layout[spec.type].length}`, { subgroup });
    }
    const applied = await this.metadata.submit((o) => ({
      t: 'pool+',
      ...o,
      p: path,
      s: { type: spec.type, subgroup, ...(spec.affinity ? { affinity: spec.affinity } : {}), ...(spec.retain ? { retain: spec.retain } : {}) },
    }));
    const r = poolResult(applied);
    await this.metadata.waitPersisted(applied.version, this.limits.readWaitMsMax);
    return { created: r.kind === 'created', pool: this.pools.get(path)! };
  }

  async deletePool(path: string): Promise<Pool> {
    assertPoolPath(path);
    const applied = await this.metadata.submit((o) => ({ t: 'pool-', ...o, p: path }));
    poolResult(applied);
    await this.metadata.waitPersisted(applied.version, this.limits.readWaitMsMax);
    return this.pools.get(path)!;
  }

  getPool(path: string): Pool {
    assertPoolPath(path);
    const p = this.pools.get(path);
    if (!p) throw new SquallError('pool_not_found', `no pool ${path}`, { pool: path });
    return p;
  }

  // ---- routing ----

  /** The pool and shard of a key; throws bad_key / pool_not_found. */
  route(key: string, forWrite: boolean): { pool: Pool; shard: ObjectShard } {
    assertKey(key);
    const pool = this.pools.forKey(key);
    if (!pool) throw new SquallError('pool_not_found', `no pool holds ${key}: create one with PUT /v1/pools/<path>`, { key });
    if (forWrite && pool.deleted) throw new SquallError('pool_not_found', `pool ${pool.path} was deleted: its objects stay readable, new writes are refused`, { key, pool: pool.path });
    const index = shardOf(key, pool.shards, pool.affinityRegex);
    const shard = this.shards[pool.type][pool.subgroup]![index]!;
    return { pool, shard };
  }

  // ---- writes ----

  async put(key: string, value: Uint8Array, options: WriteOptions = {}): Promise<WriteResult> {
    const applied = await this.submitPut(key, value, options);
    return this.finishWrite(key, applied, options.durability);
  }

  async delete(key: string, options: WriteOptions = {}): Promise<WriteResult> {
    const applied = await this.submitDelete(key, options);
    return this.finishWrite(key, applied, options.durability);
  }

  /** Hands a put to its shard's ordered stream; resolves when applied here. */
  submitPut(key: string, value: Uint8Array, options: WriteOptions): Promise<{ applied: Applied<ObjectOpResult>; pool: Pool; shard: ObjectShard }> {
    const { pool, shard } = this.route(key, true);
    this.#checkWrite(pool, value.byteLength, options);
    const contentType = options.contentType ?? DEFAULT_CONTENT_TYPE;
    return shard
      .submit((o) => {
        const op: PutOp = { t: 'put', ...o, k: key, v: value, c: contentType };
        if (options.ifMatch !== undefined) op.m = options.ifMatch;
        if (options.ifNoneMatch) op.n = 1;
        if (options.requestId !== undefined) op.r = options.requestId;
        return op;
      })
      .then((applied) => ({ applied, pool, shard }));
  }

  submitDelete(key: string, options: WriteOptions): Promise<{ applied: Applied<ObjectOpResult>; pool: Pool; shard: ObjectShard }> {
    const { pool, shard } = this.route(key, true);
    this.#checkWrite(pool, 0, options);
    return shard
      .submit((o) => {
        const op: DeleteOp = { t: 'del', ...o, k: key };
        if (options.ifMatch !== undefined) op.m = options.ifMatch;
        if (options.requestId !== undefined) op.r = options.requestId;
        return op;
      })
      .then((applied) => ({ applied, pool, shard }));
  }

  /** Turns an applied write into its answer once the asked durability is met. */
  async finishWrite(
    key: string,
    submitted: { applied: Applied<ObjectOpResult>; pool: Pool; shard: ObjectShard },
    asked: Durability | undefined,
  ): Promise<WriteResult> {
    const { applied, pool, shard } = submitted;
    const r = applied.result;
    if (r.kind === 'failed') throw new SquallError(r.code, r.message, r.details);
    if (!(r.kind === 'written')) fail(`a write applied as ${r.kind}`);
    const durability: Durability = asked ?? (pool.type === 'persistent' ? 'persisted' : 'delivered');
    if (durability === 'persisted') await shard.waitPersisted(r.version, this.limits.readWaitMsMax);
    return {
      key,
      version: r.version,
      timestamp_us: r.timestampUs,
      previous_version: nullIfNone(r.previousVersion),
      previous_version_by_key: nullIfNone(r.previousVersionByKey),
      shard: shard.info.index,
      durability,
    };
  }

  #checkWrite(pool: Pool, sizeBytes: number, options: WriteOptions): void {
    if (sizeBytes > this.limits.valueBytesMax) {
      throw new SquallError('too_large', `value of ${sizeBytes} bytes is above the limit of ${this.limits.valueBytesMax}`, { limit_bytes: this.limits.valueBytesMax });
    }
    if (options.durability === 'persisted' && pool.type === 'volatile') {
      throw new SquallError('bad_parameter', `pool ${pool.path} is volatile: it keeps nothing on disk, so only durability 'delivered' applies`, { pool: pool.path });
    }
    if (options.ifMatch !== undefined && options.ifNoneMatch) {
      throw new SquallError('bad_parameter', 'If-Match and If-None-Match together can never both hold');
    }
    if (options.requestId !== undefined && (options.requestId.length === 0 || Buffer.byteLength(options.requestId) > this.limits.requestIdBytesMax)) {
      throw new SquallError('bad_parameter', `request id must be 1 to ${this.limits.requestIdBytesMax} bytes`);
    }
  }

  // ---- reads ----

  async get(key: string, options: ReadOptions = {}): Promise<ReadResult> {
    const { pool, shard } = this.route(key, false);
    const found = await this.#find(pool, shard, key, options);
    const entry = shard.entryOf(found);
    if (!entry) throw new SquallError('trimmed', `version ${found.record.version} of ${key} was trimmed by retention`, { version: found.record.version });
    return readResult(key, found.record, entry, shard.info.index);
  }

  /** Metadata of the version a read would return, without its value (HEAD). */
  async head(key: string, options: ReadOptions = {}): Promise<ReadResult> {
    return this.get(key, options);
  }

  async #find(pool: Pool, shard: ObjectShard, key: string, options: ReadOptions): Promise<Found> {
    const waitMs = this.#waitMs(options.waitMs);
    if (options.version !== undefined && options.atUs !== undefined) throw new SquallError('bad_parameter', 'give version or at, not both');
    if (options.linearizable) {
      if (options.version !== undefined || options.atUs !== undefined || options.stable) {
        throw new SquallError('bad_parameter', 'consistency=linearizable reads the current value: it takes no version, at or stable');
      }
      // ordered after every write delivered before it started: a barrier through the shard's stream
      await shard.submit((o) => ({ t: 'bar', ...o }));
    }
    let found: Found | null;
    let point: { version: number } | { timeUs: number } | null = null;
    if (options.atUs !== undefined) {
      await shard.waitStable(options.atUs, waitMs);
      const v = shard.log.versionAtTime(options.atUs);
      found = v < 0 ? null : shard.latest(key, v);
      point = { timeUs: options.atUs };
    } else if (options.version !== undefined) {
      const v = options.version;
      shard.channel.requestProgress?.(v);
      if (options.stable) await shard.waitPersisted(v, waitMs);
      else await shard.waitDelivered(v, waitMs);
      found = shard.latest(key, v);
      point = { version: v };
    } else if (options.stable) {
      const v = shard.frontiers.persistedFrontier;
      found = v < 0 ? null : shard.latest(key, v);
      point = { version: Math.max(v, 0) };
    } else {
      found = shard.latest(key, Infinity);
    }
    if (point && (pool.retain !== null || found === null)) this.#checkTrim(shard, key, found, point);
    if (!found) throw new SquallError('not_found', `no object ${key}${describePoint(point)}`, {});
    if (found.record.deleted) {
      throw new SquallError('deleted', `${key} is deleted${describePoint(point)} (version ${found.record.version})`, { version: found.record.version });
    }
    return found;
  }

  /** 410 when the answer would come from a version retention removed. */
  #checkTrim(shard: ObjectShard, key: string, found: Found | null, point: { version: number } | { timeUs: number }): void {
    const trim = shard.trimRecord(key);
    if (!trim) return;
    if (found && found.record.version >= trim.retainedVersion) return;
    const reachesTrimmed = 'version' in point ? point.version >= trim.oldestVersion : point.timeUs >= trim.oldestTimestampUs;
    if (reachesTrimmed) {
      throw new SquallError('trimmed', `history of ${key} before version ${trim.retainedVersion} was trimmed by the pool's retention`, {
        retained_version: trim.retainedVersion,
        retained_timestamp_us: trim.retainedTimestampUs,
      });
    }
  }

  #waitMs(asked: number | undefined): number {
    if (asked === undefined) return this.limits.readWaitMsDefault;
    if (!Number.isInteger(asked) || asked < 0 || asked > this.limits.readWaitMsMax) {
      throw new SquallError('bad_parameter', `wait_ms must be an integer from 0 to ${this.limits.readWaitMsMax}`, { wait_ms: asked });
    }
    return asked;
  }

  // ---- history and listings ----

  history(key: string, options: HistoryOptions = {}): { versions: HistoryEntry[]; next: string | null } {
    const { shard } = this.route(key, false);
    const limit = this.#limit(options.limit);
    const from = options.from ?? 0;
    const to = options.to ?? Number.MAX_SAFE_INTEGER;
    if (from > to) throw new SquallError('bad_parameter', `from (${from}) is above to (${to})`);
    const records = shard.history(key, from, to, limit + 1);
    if (records.length === 0 && from === 0 && shard.latest(key, Infinity) === null && shard.trimRecord(key) === null) {
      throw new SquallError('not_found', `no object ${key}`, {});
    }
    const more = records.length > limit;
    const page = more ? records.slice(0, limit) : records;
    return {
      versions: page.map((r) => ({ version: r.version, timestamp_us: r.timestampUs, size: r.size, deleted: r.deleted })),
      next: more ? String(records[limit]!.version) : null,
    };
  }

  async listKeys(poolPath: string, options: ListOptions = {}): Promise<{ keys: KeyEntry[]; next: string | null }> {
    const pool = this.getPool(poolPath);
    const shards = this.shards[pool.type][pool.subgroup]!;
    const limit = this.#limit(options.limit);
    let prefix = pool.path + '/';
    if (options.prefix !== undefined && options.prefix !== '') {
      prefix = options.prefix.startsWith('/') ? options.prefix : pool.path + '/' + options.prefix;
      if (!prefix.startsWith(pool.path + '/')) {
        throw new SquallError('bad_parameter', `prefix ${options.prefix} is outside pool ${pool.path}`, { prefix: options.prefix });
      }
    }
    let cursor: ListCursor;
    if (options.cursor !== undefined) {
      cursor = decodeCursor(options.cursor, shards.length);
      if (options.atUs !== undefined || options.version !== undefined) {
        throw new SquallError('bad_parameter', 'a cursor already fixes the cut: pass it without at or version');
      }
    } else {
      cursor = { k: '', v: [], o: false };
      const waitMs = this.#waitMs(options.waitMs);
      if (options.atUs !== undefined && options.version !== undefined) throw new SquallError('bad_parameter', 'give version or at, not both');
      if (options.atUs !== undefined) {
        // one consistent cut: every shard's history up to t is complete and persisted
        await Promise.all(shards.map((s) => s.waitStable(options.atUs!, waitMs)));
        cursor.v = shards.map((s) => s.log.versionAtTime(options.atUs!));
      } else if (options.version !== undefined) {
        const v = options.version;
        await Promise.all(
          shards.map((s) => {
            s.channel.requestProgress?.(v);
            return options.stable ? s.waitPersisted(v, waitMs) : s.waitDelivered(v, waitMs);
          }),
        );
        cursor.v = shards.map(() => v);
        cursor.o = !options.stable;
      } else if (options.stable) {
        cursor.v = shards.map((s) => s.frontiers.persistedFrontier);
      } else {
        cursor.v = shards.map((s) => s.frontiers.deliveredVersion);
        cursor.o = true;
      }
    }
    const perShard = shards.map((s, i) => (cursor.v[i]! < 0 ? [] : s.listKeys(prefix, cursor.k, cursor.v[i]!, limit, cursor.o)));
    const merged = perShard.flat().sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    let more = merged.length > limit || perShard.some((p) => p.length >= limit);
    const page = merged.slice(0, limit);
    const keys: KeyEntry[] = [];
    let valueBytes = 0;
    for (const { key, found } of page) {
      const e: KeyEntry = { key, version: found.record.version, timestamp_us: found.record.timestampUs, size: found.record.size };
      if (options.values) {
        if (keys.length > 0 && valueBytes + found.record.size > this.limits.listValueBytesMax) {
          more = true;
          break;
        }
        const shard = this.route(key, false).shard;
        const entry = shard.entryOf(found);
        e.value = entry ? Buffer.from(entry.value.buffer, entry.value.byteOffset, entry.value.byteLength).toString('base64') : '';
        valueBytes += found.record.size;
      }
      keys.push(e);
    }
    const last = keys[keys.length - 1];
    return { keys, next: more && last ? encodeCursor({ ...cursor, k: last.key }) : null };
  }

  #limit(asked: number | undefined): number {
    if (asked === undefined) return this.limits.pageLimitDefault;
    if (!Number.isInteger(asked) || asked < 1 || asked > this.limits.pageLimitMax) {
      throw new SquallError('bad_parameter', `limit must be an integer from 1 to ${this.limits.pageLimitMax}`, { limit: asked });
    }
    return asked;
  }

  // ---- retention sweep ----

  #sweep(): void {
    if (this.#closed) return;
    const nowUs = this.#clock();
    for (const pool of this.pools.list()) {
      const seconds = pool.retain?.seconds;
      if (seconds === undefined) continue;
      const shards = this.shards[pool.type][pool.subgroup]!;
      for (const shard of shards) {
        const id = `${pool.path}\u0000${shard.name}`;
        if (this.#sweepsRunning.has(id)) continue;
        this.#sweepsRunning.add(id);
        const from = this.#sweepCursors.get(id) ?? '';
        shard
          .submit((o) => ({ t: 'sweep', ...o, p: pool.path, cut: nowUs - seconds * 1_000_000, from, max: this.limits.retentionSweepKeysMax }))
          .then(
            (applied) => {
              const r = applied.result;
              if (r.kind === 'swept') {
                if (r.next === null) this.#sweepCursors.delete(id);
                else this.#sweepCursors.set(id, r.next);
                if (r.trimmed > 0) this.#logger.debug({ pool: pool.path, shard: shard.name, trimmed: r.trimmed }, 'retention trimmed versions');
              }
            },
            (e: unknown) => this.#logger.warn({ err: e, pool: pool.path, shard: shard.name }, 'retention sweep failed; retrying next round'),
          )
          .finally(() => this.#sweepsRunning.delete(id));
      }
    }
    // forget request ids older than the retention window (local housekeeping, bounded per round)
    const generation = Math.floor(nowUs / (this.limits.requestIdRetentionMs * 1000));
    for (const shard of this.allShards) shard.log.removeRequestsBefore(generation - 1, 1000);
  }

  // ---- lifecycle ----

  get ready(): boolean {
    return !this.#closed && this.metadata.failed === null && this.allShards.every((s) => s.failed === null);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    this.watch.close();
    this.metadata.close();
    for (const s of this.allShards) s.close();
  }
}

function poolResult(applied: Applied<PoolOpResult>): PoolOpResult {
  const r = applied.result;
  if (r.kind === 'failed') throw r.error;
  return r;
}

function nullIfNone(v: number): number | null {
  return v < 0 ? null : v;
}

function readResult(key: string, record: IndexRecord, entry: LogEntry, shard: number): ReadResult {
  return {
    key,
    version: record.version,
    timestampUs: record.timestampUs,
    previousVersionByKey: record.previousVersionByKey,
    contentType: entry.contentType || DEFAULT_CONTENT_TYPE,
    value: entry.value,
    shard,
  };
}

function describePoint(point: { version: number } | { timeUs: number } | null): string {
  if (!point) return '';
  return 'version' in point ? ` at version ${point.version}` : ` at time ${point.timeUs}`;
}

function encodeCursor(c: ListCursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

function decodeCursor(text: string, shards: number): ListCursor {
  try {
    const c = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as ListCursor;
    if (typeof c.k === 'string' && Array.isArray(c.v) && c.v.length === shards && c.v.every((v) => Number.isSafeInteger(v)) && typeof c.o === 'boolean') return c;
  } catch {
    // fall through
  }
  throw new SquallError('bad_parameter', 'cursor is not one this pool handed out', { cursor: text });
}
