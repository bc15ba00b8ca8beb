import type { IncomingHttpHeaders } from 'node:http';
import {
  HEADER,
  SquallError,
  assertKey,
  assertPoolPath,
  type ClusterInfo,
  type Durability,
  type HistoryEntry,
  type HistoryPage,
  type KeyEntry,
  type KeysPage,
  type PoolInfo,
  type PoolSpec,
  type WriteResult,
} from '../api/index.js';
import { BATCH_CONTENT_TYPE, decodeBatchResults, encodeBatch, largestValueBytes, type BatchEncoding, type BatchOpInput, type BatchOpResult } from './batch-codec.js';
import { Exchanger, type Reply } from './exchange.js';
import { checkDurabilityArg, checkHeaderArg } from './header-value.js';
import { resolveClientOptions, type ClientOptions, type ResolvedClientOptions } from './options.js';
import { Query, encodePath } from './paths.js';
import { RequestIds } from './request-id.js';
import { Router, type ShardRef } from './router.js';
import { checkIntArg, timeArgToUs, type TimeArg } from './time-arg.js';
import { OpenWatches, watchChanges, type WatchChange, type WatchOptions } from './watch.js';

export interface CallOptions {
  /** Aborts the call (and its retries). */
  signal?: AbortSignal;
}

export interface WriteOptions extends CallOptions {
  /**
   * Idempotency key (Squall-Request-Id); by default a fresh unique id per call, the same on each retry. Printable
   * ASCII without leading or trailing blanks (bad_parameter otherwise, unsent).
   */
  requestId?: string;
}

export interface PutOptions extends WriteOptions {
  /** Apply only if the key's current version is exactly this (else 412 version_mismatch). */
  ifMatch?: number;
  /** Apply only if the key does not exist or is deleted (If-None-Match: *). */
  ifNoneMatch?: boolean;
  /** What the answer waits for; the server's default depends on the pool type. */
  durability?: Durability;
  /**
   * Stored and returned with the value. Default application/octet-stream, or text/plain for a string value.
   * Printable ASCII without leading or trailing blanks (bad_parameter otherwise, unsent).
   */
  contentType?: string;
}

export interface DeleteOptions extends WriteOptions {
  ifMatch?: number;
}

export interface GetOptions extends CallOptions {
  /** The key's newest value with version <= this. */
  version?: number;
  /** The key's newest value with timestamp <= this (always a stable read). */
  at?: TimeArg;
  /** Read at or below the global persistence frontier. */
  stable?: boolean;
  /** Order the read with the shard's writes. */
  consistency?: 'linearizable';
  /**
   * How long the server may wait for `at` or `version` to become stable before 425 not_yet_stable (server
   * default 2000). The client waits this long on top of headersTimeoutMs for the answer.
   */
  waitMs?: number;
}

/** An object's metadata, from the headers of a GET or HEAD. */
export interface ObjectMeta {
  key: string;
  contentType: string;
  version: number;
  timestampUs: number;
  previousVersionByKey: number | null;
}

/** A value read with GET. */
export interface ObjectValue extends ObjectMeta {
  value: Buffer;
}

/** HEAD: the metadata and the value's size, without the value. */
export interface ObjectHead extends ObjectMeta {
  sizeBytes: number;
}

export interface HistoryOptions extends CallOptions {
  from?: number;
  to?: number;
  /** Versions per page. */
  limit?: number;
  /** The `next` of the previous page (replaces `from`). */
  cursor?: string;
}

export interface ListOptions extends CallOptions {
  prefix?: string;
  /** The keys as of this time: one consistent cut over the pool's shards (first page only, see cursor). */
  at?: TimeArg;
  /** The keys as of this version (first page only, see cursor). */
  version?: number;
  stable?: boolean;
  /** How long the server may wait for `at` or `version` to become stable (as GetOptions.waitMs; first page only). */
  waitMs?: number;
  /** Keys per page. */
  limit?: number;
  /**
   * The `next` of the previous page. It fixes the cut the listing started with, so it is sent without at,
   * version, stable and waitMs: at or version next to a cursor is bad_parameter (as the server answers).
   */
  cursor?: string;
  /** Include values (base64 in KeyEntry.value). */
  values?: boolean;
}

export interface BatchOptions extends WriteOptions {
  /** Body encoding; the answer comes back in the same one. Default msgpack. */
  encoding?: BatchEncoding;
  /** What every write of the batch waits for (Squall-Durability); the server's default depends on the pool type. */
  durability?: Durability;
}

export type { BatchEncoding, BatchOpInput, BatchOpResult, TimeArg, WatchChange, WatchOptions };

const CONTENT_TYPE_BYTES = 'application/octet-stream';
const CONTENT_TYPE_TEXT = 'text/plain; charset=utf-8';
/** Pages an iterator follows at most: a guard against a server that hands out cursors forever. */
const PAGES_MAX = 1_000_000;
/** API.md's default wait_ms of a read at a time or version: what the server may wait when the call gives none. */
const READ_WAIT_MS_DEFAULT = 2000;

/** How long a read at a time or version lets the server wait before it answers (0 for other reads). */
function serverWaitMsOf(opts: { at?: TimeArg | undefined; version?: number | undefined; waitMs?: number | undefined } | undefined): number {
  if (opts === undefined) return 0;
  if (opts.waitMs !== undefined) return checkIntArg(opts.waitMs, 'waitMs');
  return opts.at !== undefined || opts.version !== undefined ? READ_WAIT_MS_DEFAULT : 0;
}

function headerCount(headers: IncomingHttpHeaders, name: string): number | null {
  const v = headers[name];
  if (typeof v !== 'string' || v === '' || v === '-1' || v === 'null') return null;
  const n = Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

function requiredHeaderCount(headers: IncomingHttpHeaders, name: string): number {
  const n = headerCount(headers, name);
  if (n === null) throw new SquallError('internal', `the node's answer lacks a valid ${name} header`, { header: name });
  return n;
}

function metaOf(key: string, headers: IncomingHttpHeaders): ObjectMeta {
  const ct = headers['content-type'];
  return {
    key,
    contentType: typeof ct === 'string' ? ct : CONTENT_TYPE_BYTES,
    version: requiredHeaderCount(headers, HEADER.version),
    timestampUs: requiredHeaderCount(headers, HEADER.timestampUs),
    previousVersionByKey: headerCount(headers, HEADER.previousVersionByKey),
  };
}

/** The ops of a batch that go to one shard, in their order, with their places in the batch. */
interface BatchPart {
  /** `<type>/<subgroup>/<shard>`, or 'any' for ops no shard route is known for. */
  name: string;
  shard: ShardRef | undefined;
  ops: BatchOpInput[];
  indices: number[];
  write: boolean;
}

/**
 * The TypeScript client of Squall's HTTP API (API.md), on one undici keep-alive pool per node. It reads the
 * cluster layout and sends each key-bound request straight to a member of the key's shard (router.ts); a
 * batch is split by shard and its parts sent in parallel. Writes carry a Squall-Request-Id and are retried
 * with the same id on connection errors and 503 + Retry-After, on another member after a layout
 * refresh, so a retried write is applied once; every error answer surfaces as the SquallError it carries.
 */
export class SquallClient {
  readonly options: ResolvedClientOptions;
  private readonly http: Exchanger;
  private readonly router: Router;
  private readonly ids = new RequestIds();
  private readonly watches = new OpenWatches();
  private closing: Promise<void> | null = null;

  constructor(options: ClientOptions | string) {
    this.options = resolveClientOptions(typeof options === 'string' ? { url: options } : options);
    this.router = new Router(this.options);
    this.http = new Exchanger(this.options, this.router);
  }

  /** The cluster view the client routes by, or null while it sends every request to its seeds. */
  get routedView(): number | null {
    return this.router.view;
  }

  /** A fresh request id, as writes send when the caller gives none. */
  newRequestId(): string {
    return this.ids.next();
  }

  /** The request id a write sends: the caller's (checked as a header value) or a fresh one. */
  private requestIdOf(opts: WriteOptions | undefined): string {
    const id = opts?.requestId;
    return id === undefined ? this.ids.next() : checkHeaderArg(id, 'requestId', 'Squall-Request-Id');
  }

  private checkKey(key: string): void {
    if (this.options.validateKeys) assertKey(key);
  }

  private checkPool(path: string): void {
    if (this.options.validateKeys) assertPoolPath(path);
  }

  private checkBodySize(sizeBytes: number, what: string): void {
    const max = this.options.bodySizeBytesMax;
    if (sizeBytes > max) {
      throw new SquallError('too_large', `${what} of ${sizeBytes} bytes is over the limit of ${max} bytes`, {
        size_bytes: sizeBytes,
        limit_bytes: max,
      });
    }
  }

  // ---- objects ----

  async put(key: string, value: Uint8Array | string, opts?: PutOptions): Promise<WriteResult> {
    this.checkKey(key);
    const text = typeof value === 'string';
    // A string of n UTF-16 units is at most 3n UTF-8 bytes: only long strings need counting.
    if (text ? value.length * 3 > this.options.bodySizeBytesMax : true) {
      this.checkBodySize(text ? Buffer.byteLength(value, 'utf8') : value.byteLength, 'value');
    }
    const contentType = opts?.contentType;
    const headers: Record<string, string> = {
      'content-type': contentType === undefined ? (text ? CONTENT_TYPE_TEXT : CONTENT_TYPE_BYTES) : checkHeaderArg(contentType, 'contentType', 'Content-Type'),
      'squall-request-id': this.requestIdOf(opts),
    };
    if (opts !== undefined) {
      if (opts.ifMatch !== undefined) headers['if-match'] = String(checkIntArg(opts.ifMatch, 'ifMatch'));
      if (opts.ifNoneMatch) headers['if-none-match'] = '*';
      if (opts.durability !== undefined) headers['squall-durability'] = checkDurabilityArg(opts.durability);
    }
    const reply = await this.http.exchange({
      method: 'PUT',
      path: '/v1/objects' + encodePath(key),
      key,
      write: true,
      headers,
      body: value,
      read: 'json',
      signal: opts?.signal,
    });
    return reply.data as WriteResult;
  }

  private readPath(key: string, opts: GetOptions | undefined): string {
    this.checkKey(key);
    const path = '/v1/objects' + encodePath(key);
    if (opts === undefined) return path;
    if (opts.version !== undefined && opts.at !== undefined) {
      throw new SquallError('bad_parameter', 'give version or at, not both', { parameter: 'version' });
    }
    const q = new Query();
    if (opts.version !== undefined) q.add('version', checkIntArg(opts.version, 'version'));
    if (opts.at !== undefined) q.add('at', timeArgToUs(opts.at));
    q.add('stable', opts.stable).add('consistency', opts.consistency);
    if (opts.waitMs !== undefined) q.add('wait_ms', checkIntArg(opts.waitMs, 'waitMs'));
    return path + q.toString();
  }

  /**
   * The value of a key (current, stable, at a version or at a time). 404 not_found / deleted, 410, 425 throw.
   * A read at a time or version waits for its answer up to headersTimeoutMs plus the wait it allows the server
   * (waitMs, or the server's default of 2000), so a cut not yet stable is 425 not_yet_stable, not a timeout.
   */
  async get(key: string, opts?: GetOptions): Promise<ObjectValue> {
    const path = this.readPath(key, opts);
    const reply = await this.http.exchange({ method: 'GET', path, key, read: 'bytes', signal: opts?.signal, serverWaitMs: serverWaitMsOf(opts) });
    const meta = metaOf(key, reply.headers) as ObjectValue;
    meta.value = reply.data as Buffer;
    return meta;
  }

  /** Like get, without the value. */
  async head(key: string, opts?: GetOptions): Promise<ObjectHead> {
    const path = this.readPath(key, opts);
    const reply = await this.http.exchange({ method: 'HEAD', path, key, read: 'none', signal: opts?.signal, serverWaitMs: serverWaitMsOf(opts) });
    const meta = metaOf(key, reply.headers) as ObjectHead;
    meta.sizeBytes = headerCount(reply.headers, 'content-length') ?? 0;
    return meta;
  }

  /** Deletes a key (a tombstone version); 404 not_found when it has no current value. */
  async delete(key: string, opts?: DeleteOptions): Promise<WriteResult> {
    this.checkKey(key);
    const headers: Record<string, string> = { 'squall-request-id': this.requestIdOf(opts) };
    if (opts?.ifMatch !== undefined) headers['if-match'] = String(checkIntArg(opts.ifMatch, 'ifMatch'));
    const reply = await this.http.exchange({
      method: 'DELETE',
      path: '/v1/objects' + encodePath(key),
      key,
      write: true,
      headers,
      read: 'json',
      signal: opts?.signal,
    });
    return reply.data as WriteResult;
  }

  /** One page of a key's versions (oldest first), with the cursor of the next page. */
  async history(key: string, opts?: HistoryOptions): Promise<HistoryPage> {
    this.checkKey(key);
    const q = new Query().flag('history');
    if (opts !== undefined) {
      // A history page's `next` is where the next page starts: it is sent as `from`.
      if (opts.cursor !== undefined) q.add('from', opts.cursor);
      else if (opts.from !== undefined) q.add('from', checkIntArg(opts.from, 'from'));
      if (opts.to !== undefined) q.add('to', checkIntArg(opts.to, 'to'));
      if (opts.limit !== undefined) q.add('limit', checkIntArg(opts.limit, 'limit'));
    }
    const reply = await this.http.exchange({ method: 'GET', path: '/v1/objects' + encodePath(key) + q.toString(), key, read: 'json', signal: opts?.signal });
    return reply.data as HistoryPage;
  }

  /** Every version of a key in the range, following pages. */
  historyAll(key: string, opts?: Omit<HistoryOptions, 'cursor'>): AsyncGenerator<HistoryEntry, void, undefined> {
    return this.pages((cursor) => this.history(key, { ...opts, cursor }), (page) => page.versions);
  }

  /**
   * One page of the keys of a pool (current, at a version, or at a time), with the next cursor. A later page
   * is asked for with the cursor alone (and prefix, limit, values): the cursor holds the cut of the first.
   */
  async list(pool: string, opts?: ListOptions): Promise<KeysPage> {
    this.checkPool(pool);
    const q = new Query();
    let serverWaitMs = 0;
    if (opts !== undefined) {
      if (opts.version !== undefined && opts.at !== undefined) {
        throw new SquallError('bad_parameter', 'give version or at, not both', { parameter: 'version' });
      }
      if (opts.cursor !== undefined && (opts.at !== undefined || opts.version !== undefined)) {
        throw new SquallError('bad_parameter', 'a cursor already fixes the cut: pass it without at or version', { parameter: 'cursor' });
      }
      q.add('prefix', opts.prefix);
      if (opts.cursor === undefined) {
        if (opts.at !== undefined) q.add('at', timeArgToUs(opts.at));
        if (opts.version !== undefined) q.add('version', checkIntArg(opts.version, 'version'));
        q.add('stable', opts.stable);
        serverWaitMs = serverWaitMsOf(opts);
        if (opts.waitMs !== undefined) q.add('wait_ms', serverWaitMs);
      }
      if (opts.limit !== undefined) q.add('limit', checkIntArg(opts.limit, 'limit'));
      q.add('cursor', opts.cursor);
      if (opts.values) q.add('values', true);
    }
    const reply = await this.http.exchange({
      method: 'GET',
      path: '/v1/pools' + encodePath(pool) + '/keys' + q.toString(),
      read: 'json',
      signal: opts?.signal,
      serverWaitMs,
    });
    return reply.data as KeysPage;
  }

  /**
   * Every key of a pool that list would give, following pages: one cut (the first page's, at `at` or
   * `version` when given), however many pages it takes; later pages send the cursor without at or version.
   */
  listAll(pool: string, opts?: Omit<ListOptions, 'cursor'>): AsyncGenerator<KeyEntry, void, undefined> {
    const { at: _at, version: _version, stable: _stable, waitMs: _waitMs, ...later } = opts ?? {};
    return this.pages((cursor) => this.list(pool, cursor === undefined ? opts : { ...later, cursor }), (page) => page.keys);
  }

  private async *pages<P extends { next: string | null }, E>(
    fetchPage: (cursor: string | undefined) => Promise<P>,
    entries: (page: P) => E[],
  ): AsyncGenerator<E, void, undefined> {
    let cursor: string | undefined;
    for (let n = 0; n < PAGES_MAX; n++) {
      const page = await fetchPage(cursor);
      yield* entries(page);
      if (page.next === null || page.next === undefined) return;
      if (page.next === cursor) throw new SquallError('internal', `the node returned the same page cursor twice: '${cursor}'`);
      cursor = page.next;
    }
    throw new SquallError('internal', `more than ${PAGES_MAX} pages`);
  }

  // ---- batches and watch ----

  /**
   * Several puts, gets and deletes (API.md "Batches"). Each op succeeds or fails on its own: look at each
   * result's status; values come back as Buffers in either encoding. With a cluster layout the batch is split
   * by shard (ops of one shard keep their order), the parts go in parallel to members of their shards, each
   * with the request id `<id>/<type>/<subgroup>/<shard>` (stable across retries), and the results come back in
   * the order of the ops. A part that fails as a whole (after its retries) gives each of its ops that error as
   * its result, so the results of the other parts are not lost; a batch that is one part throws it.
   */
  async batch(ops: readonly BatchOpInput[], opts?: BatchOptions): Promise<BatchOpResult[]> {
    const encoding = opts?.encoding ?? 'msgpack';
    if (encoding !== 'msgpack' && encoding !== 'json') {
      throw new SquallError('bad_parameter', `batch encoding must be msgpack or json, got '${String(encoding)}'`, { parameter: 'encoding' });
    }
    this.checkBodySize(largestValueBytes(ops), 'a batch value');
    const id = this.requestIdOf(opts);
    // Checked here too: a part that throws becomes its ops' results, so each part's own check would not throw.
    if (opts?.durability !== undefined) checkDurabilityArg(opts.durability);
    const parts = await this.batchParts(ops);
    if (parts.length <= 1) {
      const body = encodeBatch(ops, encoding);
      this.checkBodySize(body.byteLength, 'the batch body');
      return this.sendBatch(body, ops.length, encoding, id, parts[0], opts);
    }
    // Every part is encoded and checked before any is sent.
    const bodies = parts.map((part) => {
      const body = encodeBatch(part.ops, encoding);
      this.checkBodySize(body.byteLength, `the batch part for shard ${part.name}`);
      return body;
    });
    const results = new Array<BatchOpResult>(ops.length);
    const settled = await Promise.allSettled(
      parts.map(async (part, i) => {
        let partResults: BatchOpResult[];
        try {
          partResults = await this.sendBatch(bodies[i]!, part.ops.length, encoding, `${id}/${part.name}`, part, opts);
        } catch (e) {
          if (!(e instanceof SquallError)) throw e;
          const error = e.toBody().error;
          partResults = part.ops.map(() => ({ status: e.status, error }));
        }
        for (let j = 0; j < part.indices.length; j++) results[part.indices[j]!] = partResults[j]!;
      }),
    );
    for (const s of settled) if (s.status === 'rejected') throw s.reason;
    return results;
  }

  private async sendBatch(
    body: Buffer,
    opsCount: number,
    encoding: BatchEncoding,
    requestId: string,
    part: BatchPart | undefined,
    opts: BatchOptions | undefined,
  ): Promise<BatchOpResult[]> {
    const type = BATCH_CONTENT_TYPE[encoding];
    const headers: Record<string, string> = { 'content-type': type, accept: type, 'squall-request-id': requestId };
    if (opts?.durability !== undefined) headers['squall-durability'] = checkDurabilityArg(opts.durability);
    const reply: Reply = await this.http.exchange({
      method: 'POST',
      path: '/v1/batch',
      shard: part?.shard,
      write: part?.write ?? true,
      headers,
      body,
      read: 'bytes',
      signal: opts?.signal,
    });
    const ct = reply.headers['content-type'];
    return decodeBatchResults(reply.data as Buffer, typeof ct === 'string' ? ct : undefined, opsCount);
  }

  /** The ops grouped by the shard of their keys (by the cached layout, learning the pools it lacks first). */
  private async batchParts(ops: readonly BatchOpInput[]): Promise<BatchPart[]> {
    const router = this.router;
    const keyOf = (op: BatchOpInput): string | null => (typeof op?.key === 'string' ? op.key : null);
    const shards = ops.map((op) => {
      const key = keyOf(op);
      return key === null ? null : router.shardOf(key);
    });
    if (shards.includes(undefined)) {
      await router.warmKeys(ops.filter((_, i) => shards[i] === undefined).map((op) => op.key));
      for (let i = 0; i < ops.length; i++) if (shards[i] === undefined) shards[i] = router.shardOf(ops[i]!.key) ?? null;
    }
    const parts = new Map<string, BatchPart>();
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const shard = shards[i] ?? null;
      const name = shard === null ? 'any' : `${shard.group}/${shard.index}`;
      let part = parts.get(name);
      if (part === undefined) {
        part = { name, shard: shard ?? undefined, ops: [], indices: [], write: false };
        parts.set(name, part);
      }
      part.ops.push(op);
      part.indices.push(i);
      if (op.op !== 'get') part.write = true;
    }
    return [...parts.values()];
  }

  /**
   * Changes under a key prefix as they happen (SSE), resuming with Last-Event-ID after a dropped connection.
   * End it with `break` or opts.signal; close() ends it too (a pending next() resolves done, as with the
   * signal). A bad prefix or fromVersion throws bad_parameter at once; the connection opens on the first `next()`.
   */
  watch(prefix: string, opts: WatchOptions = {}): AsyncGenerator<WatchChange, void, undefined> {
    if (typeof prefix !== 'string' || !prefix.startsWith('/')) {
      throw new SquallError('bad_parameter', `watch prefix must start with '/', got '${String(prefix)}'`, { parameter: 'prefix' });
    }
    if (opts.fromVersion !== undefined) checkIntArg(opts.fromVersion, 'fromVersion');
    return watchChanges(this.options, this.router, this.watches, prefix, opts);
  }

  // ---- pools ----

  /** Creates a pool (or finds the identical one); 409 pool_conflict when it would nest with another. */
  async createPool(path: string, spec: PoolSpec, opts?: WriteOptions): Promise<PoolInfo> {
    this.checkPool(path);
    const reply = await this.http.exchange({
      method: 'PUT',
      path: '/v1/pools' + encodePath(path),
      headers: { 'content-type': 'application/json', 'squall-request-id': this.requestIdOf(opts) },
      body: JSON.stringify(spec),
      read: 'json',
      signal: opts?.signal,
    });
    this.router.notePool(reply.data as PoolInfo);
    return reply.data as PoolInfo;
  }

  async getPool(path: string, opts?: CallOptions): Promise<PoolInfo> {
    this.checkPool(path);
    const reply = await this.http.exchange({ method: 'GET', path: '/v1/pools' + encodePath(path), read: 'json', signal: opts?.signal });
    return reply.data as PoolInfo;
  }

  async listPools(opts?: CallOptions): Promise<PoolInfo[]> {
    const reply = await this.http.exchange({ method: 'GET', path: '/v1/pools', read: 'json', signal: opts?.signal });
    return (reply.data as { pools: PoolInfo[] }).pools;
  }

  /** Deletes a pool: its objects stay readable by version and time, new writes are refused. */
  async deletePool(path: string, opts?: WriteOptions): Promise<void> {
    this.checkPool(path);
    await this.http.exchange({
      method: 'DELETE',
      path: '/v1/pools' + encodePath(path),
      headers: { 'squall-request-id': this.requestIdOf(opts) },
      read: 'none',
      signal: opts?.signal,
    });
    this.router.notePoolDeleted(path);
  }

  // ---- cluster ----

  /** The cluster's layout and state (GET /v1/cluster); the client routes by it from now on. */
  async cluster(opts?: CallOptions): Promise<ClusterInfo> {
    const reply = await this.http.exchange({ method: 'GET', path: '/v1/cluster', read: 'json', signal: opts?.signal });
    this.router.offerLayout(reply.data);
    return reply.data as ClusterInfo;
  }

  /** True when the process at the first seed URL answers /healthz with 200, false on 503; no retry. */
  async health(opts?: CallOptions): Promise<boolean> {
    const reply = await this.http.exchange({ method: 'GET', path: '/healthz', read: 'none', noRetry: true, toSeed: true, passStatus: 503, signal: opts?.signal });
    return reply.status < 300;
  }

  /** True when the node at the first seed URL is in an installed view and its shards can serve (/readyz 200), false on 503; no retry. */
  async ready(opts?: CallOptions): Promise<boolean> {
    const reply = await this.http.exchange({ method: 'GET', path: '/readyz', read: 'none', noRetry: true, toSeed: true, passStatus: 503, signal: opts?.signal });
    return reply.status < 300;
  }

  /**
   * Ends every open watch at once: a pending next() resolves done (`{ done: true }`, as when the watch's
   * signal aborts, not an error) and so does any later one, and each watch's own connection is destroyed.
   * Then closes the connection pools after the requests in flight finish. Once it resolves the client holds no
   * socket or timer that keeps the process alive. A watch started after close() ends at once. Calling it
   * again returns the same promise.
   */
  close(): Promise<void> {
    this.closing ??= this.watches.close().then(() => this.http.close());
    return this.closing;
  }
}
