import { randomInt } from 'node:crypto';
import { Pool } from 'undici';
import { candidatePools, compileAffinity, shardOf, type PoolInfo } from '../api/index.js';
import { isConnectionError, isSlowAnswer } from './exchange.js';
import { groupOf, readLayout, type ClusterLayout } from './layout.js';
import type { ResolvedClientOptions } from './options.js';
import { encodePath } from './paths.js';

/**
 * Where each request goes. The router keeps the cluster layout (GET /v1/cluster) and the pools' shard counts
 * and affinities (GET /v1/pools/{path}), and picks for each attempt of a request the member to send it to:
 *
 * - a key-bound request goes to a member of its key's shard (key → directory → pool → shard, O(1) once the
 *   directory is cached): reads round robin over the shard's members, writes to one member per shard chosen
 *   by a per-client salt, so one client's writes to a shard come from one sender;
 * - a batch part goes to a member of its shard the same way;
 * - anything else (pools, listings, cluster, watch) to a "home" member: a seed that is a live member first.
 *
 * Without a usable layout (routing off, /v1/cluster unreachable or unreadable, a one-member cluster) every
 * request goes to the seeds, as a single-node client does; the node forwards what it does not hold.
 *
 * Members that failed are suspect for memberSuspectMs and passed over while another choice exists. The layout
 * is fetched before the first request, refreshed in the background once older than layoutRefreshIntervalMs,
 * and on demand after a failure (refreshLayout(failedAtMs) joins a fetch that started after the failure, so a
 * burst of failures costs one or two fetches, not one each).
 */

/** One node the client talks to: its origin, its keep-alive connections, and until when it is suspect. */
export class Endpoint {
  readonly pool: Pool;
  suspectUntilMs = 0;

  constructor(
    readonly origin: string,
    o: ResolvedClientOptions,
  ) {
    this.pool = new Pool(origin, {
      connections: o.connections,
      pipelining: o.pipelining,
      headersTimeout: o.headersTimeoutMs,
      bodyTimeout: o.bodyTimeoutMs,
      connectTimeout: o.connectTimeoutMs,
    });
  }
}

/** A shard of a subgroup: `group` as pools name their subgroup (`persistent/0`), `index` the shard. */
export interface ShardRef {
  group: string;
  index: number;
}

/** What routing needs from a call: its key (key-bound), or its shard (a batch part), and whether it writes. */
export interface RouteSpec {
  key?: string | undefined;
  shard?: ShardRef | undefined;
  write?: boolean | undefined;
}

interface ShardRoute {
  /** Live members of the shard, in id order. */
  members: Endpoint[];
  /** Next read goes to members[next] (round robin). */
  next: number;
  /** Writes go to members[writer] while it is not suspect. */
  writer: number;
}

interface Routes {
  gen: number;
  view: number;
  groups: Map<string, ShardRoute[]>;
  /** Where calls that are not key-bound go, in order of preference: seeds that are live members, other live members, other seeds. */
  home: Endpoint[];
}

interface PoolEntry {
  path: string;
  /** null: no such pool (or a deleted one). */
  info: PoolInfo | null;
  affinity: RegExp | null;
  shards: number;
  group: string;
  fetchedMs: number;
  refreshing: boolean;
  /** The shard routes of `group` in the routes of generation `gen` (rebound when the layout changes). */
  gen: number;
  routes: ShardRoute[] | undefined;
}

/** A key directory's pool, or (a number) until when the directory is known to be under no pool. */
type DirEntry = PoolEntry | number;

/** An answer of a layout or pool fetch: status and parsed JSON body (null when not 200). */
interface FetchedJson {
  status: number;
  data: unknown;
}

const RESOLVED = Promise.resolve();

/** The directory of a key ('' for a key without one): what the directory cache is keyed by. */
function dirOf(key: string): string {
  const i = key.lastIndexOf('/');
  return i <= 0 ? '' : key.slice(0, i);
}

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** The pool fields routing needs, checked; null when the answer is not a pool the client can route by. */
function readPool(data: unknown): { info: PoolInfo; affinity: RegExp | null } | null {
  const p = data as Partial<PoolInfo> | null;
  if (typeof p !== 'object' || p === null || typeof p.type !== 'string' || !isCount(p.subgroup) || !isCount(p.shards) || p.shards < 1) return null;
  if (p.affinity !== null && p.affinity !== undefined && typeof p.affinity !== 'string') return null;
  try {
    return { info: p as PoolInfo, affinity: compileAffinity(p.affinity) };
  } catch {
    return null;
  }
}

function pickMember(shard: ShardRoute, write: boolean, avoid: Endpoint | null, nowMs: number): Endpoint | null {
  const members = shard.members;
  const n = members.length;
  let i: number;
  if (write) {
    i = shard.writer;
  } else {
    i = shard.next;
    shard.next = i + 1 >= n ? 0 : i + 1;
  }
  for (let k = 0; k < n; k++, i = i + 1 >= n ? 0 : i + 1) {
    const e = members[i]!;
    if (e !== avoid && e.suspectUntilMs <= nowMs) return e;
  }
  return null;
}

export class Router {
  readonly seeds: readonly Endpoint[];
  private readonly endpoints = new Map<string, Endpoint>();
  private routes: Routes | null = null;
  /** A layout fetch has finished (whatever came of it) or routing is off: calls no longer wait for one. */
  private layoutSettled: boolean;
  /** When the last finished layout fetch started (performance.now() ms). */
  private layoutFetchedMs = -Infinity;
  private fetching: { startedMs: number; done: Promise<void> } | null = null;
  private readonly pools = new Map<string, PoolEntry>();
  private readonly poolFetches = new Map<string, Promise<PoolEntry | null>>();
  private readonly dirs = new Map<string, DirEntry>();
  private gen = 0;
  /** Spreads different clients' writes of a shard over its members. */
  private readonly salt = randomInt(1 << 30);
  private readonly stop = new AbortController();
  /** Why the last /v1/cluster answer could not be used (for status output and tests). */
  layoutProblem: string | null = null;

  constructor(private readonly o: ResolvedClientOptions) {
    this.seeds = o.urls.map((origin) => this.endpoint(origin));
    this.layoutSettled = !o.routing;
    // Without routing there is no layout to age: pick() never asks for a background refresh.
    if (!o.routing) this.layoutFetchedMs = Infinity;
  }

  /** The cluster view of the layout routed by, or null when requests go to the seeds. */
  get view(): number | null {
    return this.routes?.view ?? null;
  }

  private endpoint(origin: string): Endpoint {
    let e = this.endpoints.get(origin);
    if (e === undefined) {
      e = new Endpoint(origin, this.o);
      this.endpoints.set(origin, e);
    }
    return e;
  }

  // ---- picking (the hot path: no awaits, no fetches) ----

  /**
   * The endpoint for one attempt of a call, avoiding `avoid` (the one the previous attempt failed on) and
   * suspects while there is another choice; undefined when the call's route is not known yet (warm() it).
   */
  pick(call: RouteSpec, avoid: Endpoint | null): Endpoint | undefined {
    const routes = this.routes;
    if (routes === null) {
      if (!this.layoutSettled) return undefined;
      const nowMs = performance.now();
      if (nowMs - this.layoutFetchedMs > this.o.layoutRefreshIntervalMs) this.refreshInBackground(nowMs);
      return this.homeOf(this.seeds, avoid, nowMs);
    }
    const nowMs = performance.now();
    if (nowMs - this.layoutFetchedMs > this.o.layoutRefreshIntervalMs) this.refreshInBackground(nowMs);
    let shard: ShardRoute | undefined;
    if (call.key !== undefined) {
      const entry = this.dirs.get(dirOf(call.key));
      if (entry === undefined) return undefined;
      if (typeof entry === 'number') {
        if (entry <= nowMs) return undefined;
      } else {
        const index = this.shardIndexOf(entry, call.key, routes, nowMs);
        if (index >= 0) shard = entry.routes![index];
      }
    } else if (call.shard !== undefined) {
      shard = routes.groups.get(call.shard.group)?.[call.shard.index];
    }
    if (shard !== undefined && shard.members.length > 0) {
      const e = pickMember(shard, call.write === true, avoid, nowMs);
      if (e !== null) return e;
    }
    return this.homeOf(routes.home, avoid, nowMs);
  }

  /** Where a call goes when its route cannot be known: a home member (or seed). */
  fallback(avoid: Endpoint | null): Endpoint {
    return this.homeOf(this.routes?.home ?? this.seeds, avoid, performance.now());
  }

  private homeOf(list: readonly Endpoint[], avoid: Endpoint | null, nowMs: number): Endpoint {
    for (const e of list) if (e !== avoid && e.suspectUntilMs <= nowMs) return e;
    for (const e of list) if (e !== avoid) return e;
    return list[0]!;
  }

  /** The index of the key's shard in entry.routes (bound to `routes`), or -1 when the layout cannot place it. */
  private shardIndexOf(entry: PoolEntry, key: string, routes: Routes, nowMs: number): number {
    if (nowMs - entry.fetchedMs > this.o.layoutRefreshIntervalMs && !entry.refreshing) this.refreshPool(entry);
    if (entry.info === null) return -1;
    if (entry.gen !== routes.gen) {
      entry.routes = routes.groups.get(entry.group);
      entry.gen = routes.gen;
    }
    // A layout that disagrees with the pool's shard count cannot place the key: a member will forward it.
    if (entry.routes === undefined || entry.routes.length !== entry.shards) return -1;
    return entry.shards === 1 ? 0 : shardOf(key, entry.shards, entry.affinity);
  }

  /**
   * The shard a key goes to by the cached layout: undefined when its route is not known yet (warm() it),
   * null when it has none (no layout, or the key is under no known pool: any member takes it).
   */
  shardOf(key: string): ShardRef | null | undefined {
    const routes = this.routes;
    if (routes === null) return this.layoutSettled ? null : undefined;
    const entry = this.dirs.get(dirOf(key));
    if (entry === undefined) return undefined;
    const nowMs = performance.now();
    if (typeof entry === 'number') return entry <= nowMs ? undefined : null;
    const index = this.shardIndexOf(entry, key, routes, nowMs);
    return index < 0 ? null : { group: entry.group, index };
  }

  /** Marks an endpoint as failed: it is passed over for memberSuspectMs while another choice exists. */
  suspect(e: Endpoint): void {
    e.suspectUntilMs = performance.now() + this.o.memberSuspectMs;
  }

  // ---- warming and refreshing ----

  /** Learns what pick() needs for the call: the layout (first call), the pool of the call's key. */
  async warm(call: RouteSpec): Promise<void> {
    if (!this.layoutSettled) await this.refreshLayout(0);
    if (this.routes !== null && call.key !== undefined) await this.resolveDir(call.key);
  }

  /** warm() for the keys of a batch: each key directory once, in parallel. */
  async warmKeys(keys: readonly string[]): Promise<void> {
    if (!this.layoutSettled) await this.refreshLayout(0);
    if (this.routes === null) return;
    const byDir = new Map<string, string>();
    for (const key of keys) {
      const dir = dirOf(key);
      if (!byDir.has(dir)) byDir.set(dir, key);
    }
    await Promise.all([...byDir.values()].map((key) => this.resolveDir(key)));
  }

  /**
   * Brings the layout up to date with a failure seen at `failedAtMs`: resolves once a layout fetch that
   * started at or after it has finished (or at once when there is no layout to refresh).
   */
  refreshLayout(failedAtMs: number): Promise<void> {
    if (!this.o.routing || this.stop.signal.aborted) return RESOLVED;
    const f = this.fetching;
    if (f !== null) return f.startedMs >= failedAtMs ? f.done : f.done.then(() => this.refreshLayout(failedAtMs));
    if (this.layoutFetchedMs >= failedAtMs) return RESOLVED;
    const startedMs = performance.now();
    const done = this.loadLayout().finally(() => {
      this.fetching = null;
      this.layoutFetchedMs = startedMs;
      this.layoutSettled = true;
    });
    this.fetching = { startedMs, done };
    return done;
  }

  /** After a failed attempt: a layout fetched since the failure, if there is a layout to refresh. */
  async refreshAfter(failedAtMs: number): Promise<void> {
    if (this.routes !== null) await this.refreshLayout(failedAtMs);
  }

  private refreshInBackground(nowMs: number): void {
    if (this.fetching === null && this.o.routing && !this.stop.signal.aborted) void this.refreshLayout(nowMs);
  }

  private async loadLayout(): Promise<void> {
    const answer = await this.fetchJson('/v1/cluster').catch(() => null);
    if (answer === null) return; // nobody answered: keep what we have
    if (answer.status === 404) {
      // A node without /v1/cluster: requests go to the seeds.
      this.install(null);
      return;
    }
    if (answer.status !== 200) return;
    this.offerLayout(answer.data);
  }

  /** Routes by a /v1/cluster answer (also the answers of client.cluster()); an unreadable one is ignored. */
  offerLayout(body: unknown): void {
    if (!this.o.routing || this.stop.signal.aborted) return;
    const layout = readLayout(body);
    if (typeof layout === 'string') {
      this.layoutProblem = layout;
      return;
    }
    this.layoutProblem = null;
    this.install(layout);
  }

  private install(layout: ClusterLayout | null): void {
    if (layout === null || layout.members.size <= 1) {
      // One member (or none we can read): it holds or forwards everything, and the seeds reach it.
      this.routes = null;
      this.retire();
      return;
    }
    const byId = new Map<number, Endpoint>();
    for (const id of [...layout.members.keys()].sort((a, b) => a - b)) byId.set(id, this.endpoint(layout.members.get(id)!));
    const groups = new Map<string, ShardRoute[]>();
    for (const [name, shards] of layout.groups) {
      const before = this.routes?.groups.get(name);
      groups.set(
        name,
        shards.map((ids, index) => {
          const members = ids.map((id) => byId.get(id)!);
          const n = Math.max(1, members.length);
          return { members, next: (before?.[index]?.next ?? index) % n, writer: (this.salt + index) % n };
        }),
      );
    }
    const live = [...byId.values()];
    const seedMembers = this.seeds.filter((s) => live.includes(s));
    const home = [...seedMembers, ...live.filter((e) => !seedMembers.includes(e)), ...this.seeds.filter((s) => !live.includes(s))];
    this.routes = { gen: ++this.gen, view: layout.view, groups, home };
    this.retire();
  }

  /** Closes the connections of nodes that are neither seeds nor members any more (after their requests finish). */
  private retire(): void {
    const keep = new Set<Endpoint>(this.routes?.home ?? this.seeds);
    for (const s of this.seeds) keep.add(s);
    for (const [origin, e] of this.endpoints) {
      if (keep.has(e)) continue;
      this.endpoints.delete(origin);
      void e.pool.close().catch(() => undefined);
    }
  }

  private async resolveDir(key: string): Promise<void> {
    const dir = dirOf(key);
    const known = this.dirs.get(dir);
    if (known !== undefined && (typeof known !== 'number' || known > performance.now())) return;
    let missUntilMs = performance.now() + this.o.layoutRefreshIntervalMs;
    if (key.charCodeAt(0) === 0x2f) {
      for (const path of candidatePools(key)) {
        let entry = this.pools.get(path);
        if (entry === undefined || (entry.info === null && performance.now() - entry.fetchedMs > this.o.layoutRefreshIntervalMs)) {
          const fetched = await this.fetchPool(path);
          if (fetched === null) {
            // Could not learn (nobody answered): any member takes the key meanwhile; ask again soon.
            missUntilMs = performance.now() + Math.max(1, this.o.memberSuspectMs);
            break;
          }
          entry = fetched;
        }
        if (entry.info !== null) {
          this.setDir(dir, entry);
          return;
        }
      }
    }
    this.setDir(dir, missUntilMs);
  }

  private setDir(dir: string, entry: DirEntry): void {
    if (!this.dirs.has(dir) && this.dirs.size >= this.o.directoryCacheEntriesMax) this.dirs.delete(this.dirs.keys().next().value!);
    this.dirs.set(dir, entry);
  }

  /** The pool at `path` fetched now (one fetch per path at a time); null when no node answered usably. */
  private fetchPool(path: string): Promise<PoolEntry | null> {
    let p = this.poolFetches.get(path);
    if (p === undefined) {
      p = this.loadPool(path).finally(() => this.poolFetches.delete(path));
      this.poolFetches.set(path, p);
    }
    return p;
  }

  private refreshPool(entry: PoolEntry): void {
    entry.refreshing = true;
    void this.fetchPool(entry.path)
      .catch(() => null)
      .then((fresh) => {
        entry.refreshing = false;
        // Nobody answered: keep routing by what we have, and ask again after a suspect period.
        if (fresh === null) entry.fetchedMs = performance.now() - this.o.layoutRefreshIntervalMs + this.o.memberSuspectMs;
      });
  }

  private async loadPool(path: string): Promise<PoolEntry | null> {
    const answer = await this.fetchJson('/v1/pools' + encodePath(path));
    if (answer === null || answer.status >= 500) return null;
    if (answer.status !== 200) return this.storePool(path, null); // 404 pool_not_found (400 for a path no pool can have)
    const pool = readPool(answer.data);
    if (pool === null) return null;
    return this.storePool(path, pool.info.deleted === true ? null : pool.info, pool.affinity);
  }

  /** Caches what is known of the pool at `path` (null: there is none), updating an entry in place. */
  private storePool(path: string, info: PoolInfo | null, affinity: RegExp | null = null): PoolEntry {
    let entry = this.pools.get(path);
    if (entry === undefined) {
      if (this.pools.size >= this.o.poolCacheEntriesMax) this.pools.delete(this.pools.keys().next().value!);
      entry = { path, info: null, affinity: null, shards: 1, group: '', fetchedMs: 0, refreshing: false, gen: -1, routes: undefined };
      this.pools.set(path, entry);
    }
    entry.info = info;
    entry.affinity = affinity;
    entry.shards = info?.shards ?? 1;
    const group = info === null ? '' : groupOf(info);
    if (group !== entry.group) {
      entry.group = group;
      entry.gen = -1;
    }
    entry.fetchedMs = performance.now();
    return entry;
  }

  /** A pool this client created or read: cached as given, and keys are placed anew. */
  notePool(info: PoolInfo): void {
    const pool = readPool(info);
    if (pool !== null) this.storePool(info.path, info.deleted === true ? null : info, pool.affinity);
    this.dirs.clear();
  }

  /** A pool this client deleted. */
  notePoolDeleted(path: string): void {
    this.storePool(path, null);
    this.dirs.clear();
  }

  /**
   * GET `path` from the first node that answers, home members (or seeds) first and suspects last, within
   * layoutFetchTimeoutMs: one attempt per node, no retry loop (the calls that need the answer have their own).
   */
  private async fetchJson(path: string): Promise<FetchedJson | null> {
    const list = this.routes?.home ?? this.seeds;
    const nowMs = performance.now();
    const order = [...list.filter((e) => e.suspectUntilMs <= nowMs), ...list.filter((e) => e.suspectUntilMs > nowMs)];
    for (const s of this.seeds) if (!order.includes(s)) order.push(s);
    const deadlineMs = nowMs + this.o.layoutFetchTimeoutMs;
    for (const e of order) {
      const leftMs = deadlineMs - performance.now();
      if (leftMs <= 0 || this.stop.signal.aborted) return null;
      try {
        const res = await e.pool.request({
          path,
          method: 'GET',
          headers: { accept: 'application/json' },
          signal: AbortSignal.any([this.stop.signal, AbortSignal.timeout(Math.ceil(leftMs))]),
        });
        if (res.statusCode !== 200) {
          await res.body.dump();
          if (res.statusCode >= 500) continue; // this node cannot say now; another may
          return { status: res.statusCode, data: null };
        }
        return { status: 200, data: await res.body.json() };
      } catch (err) {
        // A node that cannot be reached is suspect; a body that does not parse or a node that is too slow:
        // the next one may do better, within the deadline the loop checks.
        if (isConnectionError(err) && !isSlowAnswer(err)) this.suspect(e);
      }
    }
    return null;
  }

  /** Stops refreshing and closes every connection (after the requests in flight finish). */
  async close(): Promise<void> {
    this.stop.abort();
    await Promise.all([...this.endpoints.values()].map((e) => e.pool.close()));
  }
}
