import { SquallError } from '../api/errors.js';
import { candidatePools, isPathPrefix } from '../api/keys.js';
import { compileAffinity } from '../api/shard-hash.js';
import type { PoolInfo, PoolType, RetainSpec } from '../api/types.js';
import type { NodeStorage } from '../persist/node-storage.js';
import type { Delivered, ShardViewInfo } from '../transport/ordered-shard.js';
import type { ShardEndMarker } from '../persist/shard-end.js';
import type { Layout } from './config.js';
import type { Op, PoolCreateOp } from './ops.js';
import { ShardRunner, type ShardRunnerOptions } from './shard-runner.js';

/**
 * Object pools: the registry (path → pool, with compiled affinity) and the metadata shard whose ordered
 * stream creates and deletes pools, so pool metadata is replicated state like objects are.
 *
 * Rules (API.md): pools do not nest (creating /a/b when /a exists, or the reverse, is 409 pool_conflict,
 * deleted pools included, since their objects stay readable); creating an identical pool again answers 200;
 * a pool's spec never changes (a different spec for an existing path is 409), so routing and retention of
 * existing objects stay valid; a deleted pool can be revived with the identical spec.
 */
export interface PoolRecord {
  path: string;
  type: PoolType;
  subgroup: number;
  affinity: string | null;
  retain: RetainSpec | null;
  deleted: boolean;
  version: number;
  timestampUs: number;
  /** The request id of the delete that removed the pool (a retry of it succeeds again). */
  deletedBy?: string;
}

export interface Pool extends PoolRecord {
  readonly affinityRegex: RegExp | null;
  readonly shards: number;
}

export type PoolOpResult =
  | { kind: 'created' | 'unchanged' | 'deleted'; pool: PoolRecord }
  | { kind: 'failed'; error: SquallError };

const POOL_PREFIX = 'pool:';

export class PoolRegistry {
  readonly #pools = new Map<string, Pool>();
  readonly #layout: Layout;

  constructor(layout: Layout) {
    this.#layout = layout;
  }

  shardsOf(type: PoolType, subgroup: number): number | undefined {
    return this.#layout[type][subgroup]?.shards;
  }

  /** Installs a record (load at start, or apply). */
  set(record: PoolRecord): Pool {
    const shards = this.shardsOf(record.type, record.subgroup);
    if (shards === undefined) throw new Error(`pool ${record.path} refers to ${record.type} subgroup ${record.subgroup}, which the layout does not have`);
    const pool: Pool = { ...record, affinityRegex: compileAffinity(record.affinity), shards };
    this.#pools.set(record.path, pool);
    return pool;
  }

  get(path: string): Pool | undefined {
    return this.#pools.get(path);
  }

  list(): Pool[] {
    return [...this.#pools.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** The pool a key belongs to (deleted pools included: their objects stay readable). */
  forKey(key: string): Pool | undefined {
    for (const path of candidatePools(key)) {
      const p = this.#pools.get(path);
      if (p) return p;
    }
    return undefined;
  }

  /** A pool (other than `path` itself) that `path` would nest with, if any. */
  conflicting(path: string): Pool | undefined {
    for (const p of this.#pools.values()) {
      if (p.path !== path && (isPathPrefix(p.path, path) || isPathPrefix(path, p.path))) return p;
    }
    return undefined;
  }
}

export function poolInfo(p: Pool): PoolInfo {
  return {
    path: p.path,
    type: p.type,
    subgroup: p.subgroup,
    shards: p.shards,
    affinity: p.affinity,
    retain: p.retain,
    deleted: p.deleted,
    version: p.version,
    timestamp_us: p.timestampUs,
  };
}

function sameSpec(a: PoolRecord, s: PoolCreateOp['s']): boolean {
  return (
    a.type === s.type &&
    a.subgroup === s.subgroup &&
    (a.affinity ?? null) === (s.affinity ?? null) &&
    (a.retain?.versions ?? null) === (s.retain?.versions ?? null) &&
    (a.retain?.seconds ?? null) === (s.retain?.seconds ?? null)
  );
}

/** The metadata shard: applies pool ops in order and keeps the registry and LMDB in step. */
export class MetadataShard extends ShardRunner<PoolOpResult> {
  readonly registry: PoolRegistry;
  readonly end: ShardEndMarker;

  constructor(options: ShardRunnerOptions, registry: PoolRegistry, end: ShardEndMarker) {
    super(options);
    this.registry = registry;
    this.end = end;
  }

  protected override afterBatch(lastVersion: number, lastTimestampUs: number): void {
    this.end.mark(lastVersion, lastTimestampUs);
  }

  protected override onViewChanged(info: ShardViewInfo): void {
    if (info.awaitingState) this.end.markComplete(false, info.awaitingFrom ?? []);
  }

  /** The whole registry, for a member that needs this shard's state. */
  exportState(): PoolRecord[] {
    return this.registry.list().map(stripPool);
  }

  /** Installs a transferred registry (staged; the caller waits for durability). */
  installState(records: readonly PoolRecord[], version: number, timestampUs: number): void {
    for (const r of records) {
      this.storage.putMeta(POOL_PREFIX + r.path, r);
      this.registry.set(r);
    }
    this.end.mark(version, timestampUs);
    this.end.markComplete(true, []);
  }

  /** After the transferred state is durable. */
  stateInstalled(version: number): void {
    this.installedUpTo(version);
  }

  /** Loads saved pools into the registry (start-up). */
  static load(storage: NodeStorage, registry: PoolRegistry): number {
    let n = 0;
    for (const { value } of storage.meta.getRange({ start: POOL_PREFIX, end: POOL_PREFIX + '\uffff' })) {
      registry.set(value as PoolRecord);
      n++;
    }
    return n;
  }

  protected applyOp(d: Delivered, op: Op): PoolOpResult {
    if (op.t === 'pool+') {
      const existing = this.registry.get(op.p);
      if (existing && !sameSpec(existing, op.s)) {
        return {
          kind: 'failed',
          error: new SquallError('pool_conflict', `pool ${op.p} already exists with a different spec (pool specs never change; delete it and use another path)`, {
            pool: op.p,
          }),
        };
      }
      if (existing && !existing.deleted) return { kind: 'unchanged', pool: existing };
      const nested = this.registry.conflicting(op.p);
      if (nested) {
        return {
          kind: 'failed',
          error: new SquallError('pool_conflict', `pool ${op.p} would nest with existing pool ${nested.path}${nested.deleted ? ' (deleted, objects still readable)' : ''}; pools do not nest`, {
            pool: op.p,
            conflict: nested.path,
          }),
        };
      }
      if (this.registry.shardsOf(op.s.type, op.s.subgroup) === undefined) {
        return { kind: 'failed', error: new SquallError('bad_parameter', `no ${op.s.type} subgroup ${op.s.subgroup} in the layout`, { subgroup: op.s.subgroup }) };
      }
      const record: PoolRecord = {
        path: op.p,
        type: op.s.type,
        subgroup: op.s.subgroup,
        affinity: op.s.affinity ?? null,
        retain: op.s.retain ?? null,
        deleted: false,
        version: d.version,
        timestampUs: d.timestampUs,
      };
      this.storage.putMeta(POOL_PREFIX + op.p, record);
      return { kind: 'created', pool: this.registry.set(record) };
    }
    if (op.t === 'pool-') {
      const existing = this.registry.get(op.p);
      if (existing?.deleted && op.r !== undefined && existing.deletedBy === op.r) return { kind: 'deleted', pool: existing };
      if (!existing || existing.deleted) {
        return { kind: 'failed', error: new SquallError('pool_not_found', `no pool ${op.p}`, { pool: op.p }) };
      }
      const record: PoolRecord = { ...stripPool(existing), deleted: true, version: d.version, timestampUs: d.timestampUs, ...(op.r !== undefined && { deletedBy: op.r }) };
      this.storage.putMeta(POOL_PREFIX + op.p, record);
      return { kind: 'deleted', pool: this.registry.set(record) };
    }
    throw new Error(`metadata shard cannot apply op '${op.t}'`);
  }
}

function stripPool(p: Pool): PoolRecord {
  const { path, type, subgroup, affinity, retain, deleted, version, timestampUs } = p;
  return { path, type, subgroup, affinity, retain, deleted, version, timestampUs };
}
