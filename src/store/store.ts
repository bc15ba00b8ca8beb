import { SquallError } from '../api/errors.js';
import { assertKey, assertPoolPath, assertRequestId } from '../api/keys.js';
import { checkAffinity, shardOf } from '../api/shard-hash.js';
import type { BatchResult, Durability, HistoryEntry, KeyEntry, PoolSpec, PoolType, WriteResult } from '../api/types.js';
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
import { notServing, type Applied, type ShardRunner } from './shard-runner.js';
import type { RemoteCalls, RemoteMethod } from './remote.js';
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
  /** Forwards calls about shards this member does not order (cluster only). */
  remote?: RemoteCalls;
}

/** One operation of a batch, parsed (http/batch.ts). */
export type BatchOperation =
  | { op: 'put'; key: string; value: Uint8Array; options: WriteOptions }
  | { op: 'delete'; key: string; options: WriteOptions }
  | { op: 'get'; key: string; options: ReadOptions };

/** How a listing's cut is chosen on a shard: resolved once (first page), then pinned in the cursor. */
type ListCut =
  | { kind: 'at'; atUs: number; waitMs: number }
  | { kind: 'version'; version: number; stable: boolean; waitMs: number }
  | { kind: 'stable' }
  | { kind: 'current' }
  | { kind: 'pinned'; pin: number; overlay: boolean };

interface ListPartRequest {
  prefix: string;
  afterKey: string;
  limit: number;
  values: boolean;
  cut: ListCut;
}

interface ListPart {
  entries: Array<{ key: string; version: number; timestamp_us: number; size: number; value?: Uint8Array }>;
  /** Every key of the shard after afterKey up to the last entry is here, and nothing follows (no limit hit). */
  complete: boolean;
  pin: number;
  overlay: boolean;
}

/** A write handed to its shard and applied here, with when each happened (performance.now(), ms). */
export interface Submitted {
  applied: Applied<ObjectOpResult>;
  pool: Pool;
  shard: ObjectShard;
  submittedMs: number;
  appliedMs: number;
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
  /**
   * Calls this member carried to a member of a shard it does not order, by method, since it started (the
   * watch hub's background pulls are not counted: no client request asked for them).
   */
  readonly forwardedCalls = new Map<RemoteMethod, number>();
  /**
   * Called once per write answered here (metrics): seconds from its submission to its shard's stream until
   * it was applied here (ordering); from then until this member's copy of it was synced (null if not
   * known: a `delivered` write is answered before); and from applied until its durability level was met.
   */
  onWriteTimed: ((orderedS: number, syncedHereS: number | null, durableS: number, durability: Durability) => void) | null = null;
  readonly #clock: ClockUs;
  readonly #logger: Logger;
  readonly #remote: RemoteCalls | null;
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
    this.#remote = options.remote ?? null;
    this.pools = new PoolRegistry(options.layout);
    const loaded = MetadataShard.load(options.storage, this.pools);
    const runnerBase = {
      storage: options.storage,
      nodeId: options.nodeId,
      pendingOpsMax: options.limits.shardPendingOpsMax,
      waitersMax: options.limits.shardPendingOpsMax,
    };
    const poolsTs = Math.max(0, ...this.pools.list().map((p) => p.timestampUs));
    const metadataEnd = options.storage.endMarker('metadata/0/0');
    this.metadata = new MetadataShard(
      {
        ...runnerBase,
        channel: options.openChannel('metadata/0/0', poolsTs),
        durability: 'durable',
        logger: options.logger.child({ shard: 'metadata/0/0' }),
        durableVersionStart: metadataEnd.get()?.version ?? -1,
      },
      this.pools,
      metadataEnd,
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
              durableVersionStart: log.end.get()?.version ?? -1,
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
    const remote = options.remote;
    this.watch = new WatchHub(
      allShards,
      options.limits,
      options.logger.child({ part: 'watch' }),
      remote
        ? (shard, afterVersion, eventsMax, waitMs, atUs) =>
            remote.call(shard.name, 'watchPull', { afterVersion, eventsMax, waitMs, ...(atUs !== undefined ? { atUs } : {}) }) as ReturnType<WatchHub['pull']>
        : null,
    );
    this.watch.startPulling();
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
    if (spec.affinity) {
      try {
        checkAffinity(spec.affinity);
      } catch (e) {
        throw new SquallError('bad_parameter', `affinity: ${(e as Error).message}`, { field: 'affinity' });
      }
    }
    const s = { type: spec.type, subgroup, ...(spec.affinity ? { affinity: spec.affinity } : {}), ...(spec.retain ? { retain: spec.retain } : {}) };
    if (!this.metadata.serving) {
      const created = (await this.#forward(this.metadata, 'pool+', { path, spec: s })) as boolean;
      return { created, pool: await this.#poolAfterForward(path) };
    }
    const created = await this.#createPoolLocal(path, s);
    return { created, pool: this.pools.get(path)! };
  }

  async #createPoolLocal(path: string, s: { type: PoolType; subgroup: number; affinity?: string; retain?: PoolSpec['retain'] }): Promise<boolean> {
    const applied = await this.metadata.submit((o) => ({ t: 'pool+', ...o, p: path, s }));
    const r = poolResult(applied);
    await this.metadata.waitPersisted(applied.version, this.limits.readWaitMsMax);
    return r.kind === 'created';
  }

  /** Marks a pool deleted; with a request id, a retry of the delete that removed it answers the same. */
  async deletePool(path: string, options: { requestId?: string } = {}): Promise<Pool> {
    assertPoolPath(path);
    const { requestId } = options;
    this.#checkRequestId(requestId);
    if (!this.metadata.serving) {
      await this.#forward(this.metadata, 'pool-', { path, ...(requestId !== undefined && { requestId }) });
      return this.#poolAfterForward(path);
    }
    await this.#deletePoolLocal(path, requestId);
    return this.pools.get(path)!;
  }

  async #deletePoolLocal(path: string, requestId: string | undefined): Promise<void> {
    const applied = await this.metadata.submit((o) => ({ t: 'pool-', ...o, p: path, ...(requestId !== undefined && { r: requestId }) }));
    poolResult(applied);
    await this.metadata.waitPersisted(applied.version, this.limits.readWaitMsMax);
  }

  /** After another member changed a pool: this member's registry catches up once it delivers the change. */
  async #poolAfterForward(path: string): Promise<Pool> {
    const deadline = Date.now() + this.limits.readWaitMsMax;
    for (;;) {
      const p = this.pools.get(path);
      if (p || Date.now() > deadline) return p ?? this.getPool(path);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  getPool(path: string): Pool {
    assertPoolPath(path);
    const p = this.pools.get(path);
    if (!p && !this.metadata.serving) throw notServing(this.metadata.name);
    if (!p) throw new SquallError('pool_not_found', `no pool ${path}`, { pool: path });
    return p;
  }

  // ---- routing ----

  /** The pool and shard of a key; throws bad_key / pool_not_found. */
  route(key: string, forWrite: boolean): { pool: Pool; shard: ObjectShard } {
    assertKey(key);
    const pool = this.pools.forKey(key);
    if (!pool) {
      // a member whose pool registry is still being transferred cannot know: retry elsewhere or later
      if (!this.metadata.serving) throw notServing(this.metadata.name);
      throw new SquallError('pool_not_found', `no pool holds ${key}: create one with PUT /v1/pools/<path>`, { key });
    }
    if (forWrite && pool.deleted) throw new SquallError('pool_not_found', `pool ${pool.path} was deleted: its objects stay readable, new writes are refused`, { key, pool: pool.path });
    const index = shardOf(key, pool.shards, pool.affinityRegex);
    const shard = this.shards[pool.type][pool.subgroup]![index]!;
    return { pool, shard };
  }

  // ---- writes ----

  async put(key: string, value: Uint8Array, options: WriteOptions = {}): Promise<WriteResult> {
    const { pool, shard } = this.route(key, true);
    this.#checkWrite(pool, value.byteLength, options);
    if (!shard.serving) return (await this.#forward(shard, 'put', { key, value, options })) as WriteResult;
    return this.finishWrite(key, await this.submitPut(key, value, options), options.durability);
  }

  async delete(key: string, options: WriteOptions = {}): Promise<WriteResult> {
    const { pool, shard } = this.route(key, true);
    this.#checkWrite(pool, 0, options);
    if (!shard.serving) return (await this.#forward(shard, 'delete', { key, options })) as WriteResult;
    return this.finishWrite(key, await this.submitDelete(key, options), options.durability);
  }

  /** Hands a put to its (local) shard's ordered stream; resolves when applied here. */
  submitPut(key: string, value: Uint8Array, options: WriteOptions): Promise<Submitted> {
    const { pool, shard } = this.route(key, true);
    this.#checkWrite(pool, value.byteLength, options);
    const contentType = options.contentType ?? DEFAULT_CONTENT_TYPE;
    const submittedMs = performance.now();
    return shard
      .submit((o) => {
        const op: PutOp = { t: 'put', ...o, k: key, v: value, c: contentType };
        if (options.ifMatch !== undefined) op.m = options.ifMatch;
        if (options.ifNoneMatch) op.n = 1;
        if (options.requestId !== undefined) op.r = options.requestId;
        return op;
      })
      .then((applied) => ({ applied, pool, shard, submittedMs, appliedMs: performance.now() }));
  }

  submitDelete(key: string, options: WriteOptions): Promise<Submitted> {
    const { pool, shard } = this.route(key, true);
    this.#checkWrite(pool, 0, options);
    if (options.ifNoneMatch) throw new SquallError('bad_parameter', 'If-None-Match applies to puts: a delete takes If-Match');
    const submittedMs = performance.now();
    return shard
      .submit((o) => {
        const op: DeleteOp = { t: 'del', ...o, k: key };
        if (options.ifMatch !== undefined) op.m = options.ifMatch;
        if (options.requestId !== undefined) op.r = options.requestId;
        return op;
      })
      .then((applied) => ({ applied, pool, shard, submittedMs, appliedMs: performance.now() }));
  }

  /** A call about a shard this member does not order, carried to one that does. */
  #forward(shard: ShardRunner<unknown>, method: RemoteMethod, args: unknown): Promise<unknown> {
    if (shard.failed) return Promise.reject(shard.failed);
    if (!this.#remote) return Promise.reject(notServing(shard.name));
    this.forwardedCalls.set(method, (this.forwardedCalls.get(method) ?? 0) + 1);
    return this.#remote.call(shard.name, method, args);
  }

  /** Turns an applied write into its answer once the asked durability is met. */
  async finishWrite(key: string, submitted: Submitted, asked: Durability | undefined): Promise<WriteResult> {
    const { applied, pool, shard } = submitted;
    const r = applied.result;
    if (r.kind === 'failed') throw new SquallError(r.code, r.message, r.details);
    if (!(r.kind === 'written')) fail(`a write applied as ${r.kind}`);
    const durability: Durability = asked ?? (pool.type === 'persistent' ? 'persisted' : 'delivered');
    if (durability === 'persisted') await shard.waitPersisted(r.version, this.limits.readWaitMsMax);
    if (this.onWriteTimed) {
      const { submittedMs, appliedMs } = submitted;
      const syncedMs = durability === 'persisted' ? shard.durableAt(r.version) : null;
      this.onWriteTimed((appliedMs - submittedMs) / 1000, syncedMs === null ? null : (syncedMs - appliedMs) / 1000, (performance.now() - appliedMs) / 1000, durability);
    }
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
    this.#checkRequestId(options.requestId);
  }

  #checkRequestId(requestId: string | undefined): void {
    if (requestId !== undefined) assertRequestId(requestId, this.limits.requestIdBytesMax);
  }

  // ---- reads ----

  async get(key: string, options: ReadOptions = {}): Promise<ReadResult> {
    const { pool, shard } = this.route(key, false);
    if (!shard.serving) return (await this.#forward(shard, 'get', { key, options })) as ReadResult;
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

  async history(key: string, options: HistoryOptions = {}): Promise<{ versions: HistoryEntry[]; next: string | null }> {
    const { shard } = this.route(key, false);
    if (!shard.serving) return (await this.#forward(shard, 'history', { key, options })) as { versions: HistoryEntry[]; next: string | null };
    return this.#historyLocal(shard, key, options);
  }

  #historyLocal(shard: ObjectShard, key: string, options: HistoryOptions): { versions: HistoryEntry[]; next: string | null } {
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
    let afterKey = '';
    let cuts: ListCut[];
    if (options.cursor !== undefined) {
      if (options.atUs !== undefined || options.version !== undefined) {
        throw new SquallError('bad_parameter', 'a cursor already fixes the cut: pass it without at or version');
      }
      const c = decodeCursor(options.cursor, shards.length);
      afterKey = c.k;
      cuts = c.v.map((pin) => ({ kind: 'pinned', pin, overlay: c.o }));
    } else {
      const waitMs = this.#waitMs(options.waitMs);
      if (options.atUs !== undefined && options.version !== undefined) throw new SquallError('bad_parameter', 'give version or at, not both');
      // at=T: one consistent cut, each shard at its newest version with timestamp ≤ T once T is stable there
      const cut: ListCut =
        options.atUs !== undefined
          ? { kind: 'at', atUs: options.atUs, waitMs }
          : options.version !== undefined
            ? { kind: 'version', version: options.version, stable: options.stable ?? false, waitMs }
            : options.stable
              ? { kind: 'stable' }
              : { kind: 'current' };
      cuts = shards.map(() => cut);
    }
    const values = options.values ?? false;
    const parts = await Promise.all(
      shards.map((shard, i) => {
        const req: ListPartRequest = { prefix, afterKey, limit, values, cut: cuts[i]! };
        return shard.serving ? this.#listPart(shard, req) : (this.#forward(shard, 'listShard', req) as Promise<ListPart>);
      }),
    );
    // Merge: keys up to the last one of any part that stopped early are known on every shard.
    let horizon: string | null = null;
    for (const p of parts) {
      if (!p.complete && p.entries.length > 0) {
        const last = p.entries[p.entries.length - 1]!.key;
        if (horizon === null || last < horizon) horizon = last;
      }
    }
    const merged = parts
      .flatMap((p) => p.entries)
      .filter((e) => horizon === null || e.key <= horizon)
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const page = merged.slice(0, limit);
    const more = horizon !== null || merged.length > limit;
    const keys: KeyEntry[] = page.map((e) => {
      const k: KeyEntry = { key: e.key, version: e.version, timestamp_us: e.timestamp_us, size: e.size };
      if (e.value !== undefined) k.value = Buffer.from(e.value.buffer, e.value.byteOffset, e.value.byteLength).toString('base64');
      return k;
    });
    const last = keys[keys.length - 1];
    const cursor: ListCursor = { k: last?.key ?? afterKey, v: parts.map((p) => p.pin), o: parts[0]?.overlay ?? false };
    return { keys, next: more && last ? encodeCursor(cursor) : null };
  }

  /** One shard's part of a listing, on the member that orders the shard. */
  async #listPart(shard: ObjectShard, req: ListPartRequest): Promise<ListPart> {
    const cut = req.cut;
    let pin: number;
    let overlay = false;
    switch (cut.kind) {
      case 'at':
        await shard.waitStable(cut.atUs, cut.waitMs);
        pin = shard.log.versionAtTime(cut.atUs);
        break;
      case 'version':
        shard.channel.requestProgress?.(cut.version);
        if (cut.stable) await shard.waitPersisted(cut.version, cut.waitMs);
        else await shard.waitDelivered(cut.version, cut.waitMs);
        pin = cut.version;
        overlay = !cut.stable;
        break;
      case 'stable':
        pin = shard.frontiers.persistedFrontier;
        break;
      case 'current':
        pin = shard.frontiers.deliveredVersion;
        overlay = true;
        break;
      case 'pinned':
        pin = cut.pin;
        overlay = cut.overlay;
        break;
    }
    const found = pin < 0 ? [] : shard.listKeys(req.prefix, req.afterKey, pin, req.limit, overlay);
    const entries: ListPart['entries'] = [];
    let bytes = 0;
    let truncated = false;
    for (const { key, found: f } of found) {
      const e: ListPart['entries'][number] = { key, version: f.record.version, timestamp_us: f.record.timestampUs, size: f.record.size };
      if (req.values) {
        if (entries.length > 0 && bytes + f.record.size > this.limits.listValueBytesMax) {
          truncated = true;
          break;
        }
        const entry = shard.entryOf(f);
        e.value = entry ? entry.value : new Uint8Array(0);
        bytes += f.record.size;
      }
      entries.push(e);
    }
    return { entries, complete: !truncated && found.length < req.limit, pin, overlay };
  }

  // ---- batches ----

  /**
   * Many operations, each answered on its own. Ops are grouped by shard; each group keeps its order (a
   * get sees exactly the group's writes before it) and groups run in parallel, here or forwarded to a
   * member that orders the shard.
   */
  async batch(ops: readonly BatchOperation[]): Promise<BatchResult[]> {
    const results: BatchResult[] = new Array(ops.length);
    const groups = new Map<ObjectShard, number[]>();
    ops.forEach((op, i) => {
      try {
        const { shard } = this.route(op.key, op.op !== 'get');
        let g = groups.get(shard);
        if (!g) groups.set(shard, (g = []));
        g.push(i);
      } catch (e) {
        results[i] = errorResult(e);
      }
    });
    await Promise.all(
      [...groups].map(async ([shard, indexes]) => {
        const group = indexes.map((i) => ops[i]!);
        const out = shard.serving ? await this.#batchLocal(group) : ((await this.#forward(shard, 'batch', { ops: group })) as BatchResult[]);
        indexes.forEach((i, j) => (results[i] = out[j]!));
      }),
    );
    return results;
  }

  async #batchLocal(ops: readonly BatchOperation[]): Promise<BatchResult[]> {
    const results: BatchResult[] = new Array(ops.length);
    const tasks: Promise<void>[] = [];
    let applied: Promise<unknown>[] = [];
    // the gets since the last write: they read together (each may wait for a frontier), and the next
    // write is submitted only once they all have read, so none of them sees it
    let reading: Promise<void>[] = [];
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const fail = (e: unknown): void => {
        results[i] = errorResult(e);
      };
      if (op.op === 'get') {
        // a get sees exactly the writes before it: wait for them to be applied
        if (applied.length > 0) {
          await Promise.all(applied);
          applied = [];
        }
        reading.push(
          this.get(op.key, op.options).then((r) => {
            results[i] = {
              status: 200,
              key: r.key,
              version: r.version,
              timestamp_us: r.timestampUs,
              previous_version_by_key: r.previousVersionByKey < 0 ? null : r.previousVersionByKey,
              shard: r.shard,
              content_type: r.contentType,
              size: r.value.byteLength,
              value: r.value,
            };
          }, fail),
        );
        continue;
      }
      if (reading.length > 0) {
        await Promise.all(reading);
        reading = [];
      }
      let submitted: ReturnType<Store['submitPut']>;
      try {
        submitted = op.op === 'put' ? this.submitPut(op.key, op.value, op.options) : this.submitDelete(op.key, op.options);
      } catch (e) {
        fail(e);
        continue;
      }
      applied.push(submitted.catch(() => undefined));
      tasks.push(
        submitted
          .then((s) => this.finishWrite(op.key, s, op.options.durability))
          .then((r) => {
            results[i] = { status: 200, ...r };
          }, fail),
      );
    }
    await Promise.all([...tasks, ...reading]);
    return results;
  }

  // ---- calls forwarded by other members ----

  /**
   * Runs a call another member forwarded, on this member only (never forwarded again): `unavailable`
   * with not_serving when this member does not order the shard now, so the caller tries another.
   */
  async handleRemote(shardName: string, method: RemoteMethod, args: unknown): Promise<unknown> {
    const a = args as Record<string, unknown>;
    if (method === 'pool+' || method === 'pool-') {
      if (!this.metadata.serving) throw notServing(this.metadata.name);
      if (method === 'pool+') return this.#createPoolLocal(a.path as string, a.spec as Parameters<Store['createPool']>[1] & { subgroup: number });
      await this.#deletePoolLocal(a.path as string, a.requestId as string | undefined);
      return null;
    }
    const shard = this.allShards.find((s) => s.name === shardName);
    if (!shard) throw new SquallError('bad_parameter', `no shard ${shardName}`);
    if (!shard.serving) throw notServing(shardName);
    switch (method) {
      case 'put': {
        const key = a.key as string;
        const value = a.value as Uint8Array;
        const options = a.options as WriteOptions;
        return this.finishWrite(key, await this.submitPut(key, value, options), options.durability);
      }
      case 'delete': {
        const key = a.key as string;
        const options = a.options as WriteOptions;
        return this.finishWrite(key, await this.submitDelete(key, options), options.durability);
      }
      case 'get':
        return this.get(a.key as string, a.options as ReadOptions);
      case 'history':
        return this.#historyLocal(shard, a.key as string, a.options as HistoryOptions);
      case 'listShard':
        return this.#listPart(shard, a as unknown as ListPartRequest);
      case 'batch':
        return this.#batchLocal(a.ops as BatchOperation[]);
      case 'watchPull':
        return this.watch.pull(shard, a.afterVersion as number, a.eventsMax as number, a.waitMs as number, (a.atUs as number | undefined) ?? Infinity);
      default:
        throw new SquallError('bad_parameter', `unknown forwarded call ${String(method)}`);
    }
  }

  #limit(asked: number | undefined): number {
    if (asked === undefined) return this.limits.pageLimitDefault;
    if (!Number.isInteger(asked) || asked < 1 || asked > this.limits.pageLimitMax) {
      throw new SquallError('bad_parameter', `limit must be an integer from 1 to ${this.limits.pageLimitMax}`, { limit: asked });
    }
    return asked;
  }

  /** This node's clock (µs since the epoch; the time source of its writes' timestamps). */
  nowUs(): number {
    return this.#clock();
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

  /** Serving: not closing, no shard failed, and the pool registry is here (not awaiting a transfer). */
  get ready(): boolean {
    return this.notReady === null;
  }

  /** Why this store cannot serve (a failed shard and its cause, closing, the metadata shard not ordered), or null. */
  get notReady(): string | null {
    if (this.#closed) return 'it is shutting down';
    const failed = this.allShards.find((s) => s.failed !== null)?.failed;
    if (failed) return failed.message;
    if (!this.metadata.serving) return `it does not order the pool metadata shard ${this.metadata.name} now`;
    return null;
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

function errorResult(e: unknown): BatchResult {
  if (e instanceof SquallError) return { status: e.status, error: e.toBody().error };
  throw e;
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
