import { isSquallError } from '../../src/api/errors.js';
import { SquallClient } from '../../src/client/index.js';
import type { KeyValue, KvTarget, OpenOptions, TargetLimits } from '../target.js';

/**
 * Squall through its TypeScript client. Keys live in one persistent pool; every write waits for
 * `persisted` (synced to disk on every replica of its shard before the answer). The ref of a write is its
 * timestamp, and a past read is a read "as of" that time (answered from versions stable on every replica).
 */
export interface SquallTargetOptions {
  url: string;
  pool?: string;
}

export class SquallTarget implements KvTarget<number> {
  readonly name = 'squall';
  /** Set by open() from the cluster's layout: the replicas of the pool's shards. */
  durability = 'persisted: fsync on every replica before the answer';
  readonly readConsistency = { get: 'current value at the serving replica', getPast: 'as of a time, stable on every replica' };
  readonly limits: TargetLimits = { requestBytesMax: 256 * 1024 * 1024, batchEntriesMax: 10_000 };
  readonly #url: string;
  readonly #pool: string;
  #client: SquallClient | null = null;

  constructor(options: SquallTargetOptions) {
    this.#url = options.url;
    this.#pool = options.pool ?? '/bench';
  }

  async open({ concurrency }: OpenOptions): Promise<void> {
    this.#client = new SquallClient({ url: this.#url, connections: Math.max(1, concurrency), bodySizeBytesMax: this.limits.requestBytesMax! });
    const pool = await this.#client.createPool(this.#pool, { type: 'persistent' });
    const cluster = await this.#client.cluster();
    const shards = cluster.subgroups.find((s) => s.type === 'persistent' && s.subgroup === pool.subgroup)?.shards ?? [];
    const replicas = Math.min(...shards.map((s) => s.members.length));
    this.durability = `persisted: fsync on ${replicas}/${replicas} replica${replicas === 1 ? '' : 's'} before the answer`;
  }

  #key(key: string): string {
    return `${this.#pool}/${key}`;
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    const r = await this.#client!.put(this.#key(key), value, { durability: 'persisted' });
    return r.timestamp_us;
  }

  async putMany(entries: readonly KeyValue[]): Promise<number> {
    const results = await this.#client!.batch(
      entries.map((e) => ({ op: 'put' as const, key: this.#key(e.key), value: e.value })),
      { encoding: 'msgpack' },
    );
    let ref = 0;
    for (const r of results) {
      if (r.status !== 200) throw new Error(`batch put failed: ${r.status} ${r.error?.code}: ${r.error?.message}`);
      ref = Math.max(ref, r.timestamp_us!);
    }
    return ref;
  }

  async get(key: string): Promise<Uint8Array | null> {
    try {
      return (await this.#client!.get(this.#key(key))).value;
    } catch (e) {
      if (isSquallError(e, 'not_found') || isSquallError(e, 'deleted')) return null;
      throw e;
    }
  }

  async getPast(key: string, ref: number): Promise<Uint8Array | null> {
    try {
      return (await this.#client!.get(this.#key(key), { at: ref })).value;
    } catch (e) {
      if (isSquallError(e, 'not_found') || isSquallError(e, 'deleted')) return null;
      throw e;
    }
  }

  async close(): Promise<void> {
    const c = this.#client;
    this.#client = null;
    await c?.close();
  }
}
