import { isSquallError } from '../../src/api/errors.js';
import type { Durability } from '../../src/api/types.js';
import { SquallClient, type BatchOpResult } from '../../src/client/index.js';
import type { KeyValue, KvTarget, OpenOptions, TargetLimits } from '../target.js';

/**
 * Squall through its TypeScript client. Keys live in one persistent pool; every write waits for the
 * durability asked (`persisted` by default: synced to disk on every replica of its shard before the answer;
 * `delivered`: received by every replica, synced after the answer). The ref of a write is its timestamp,
 * and a past read is a read "as of" that time (answered from versions stable on every replica). The writes
 * of one multicast batch share a timestamp: a read at it returns the newest of them.
 */
export interface SquallTargetOptions {
  url: string;
  pool?: string;
  /** Name in the tables (default 'squall'). */
  name?: string;
  /** What a write waits for (default persisted). */
  durability?: Durability;
}

export class SquallTarget implements KvTarget<number> {
  readonly name: string;
  /** Set by open() from the cluster's layout: the replicas of the pool's shards. */
  durability: string;
  readonly readConsistency = { get: 'current value at the serving replica', getPast: 'as of a time, stable on every replica' };
  readonly limits: TargetLimits = { requestBytesMax: 256 * 1024 * 1024, batchEntriesMax: 10_000 };
  readonly #url: string;
  readonly #pool: string;
  readonly #asked: Durability;
  #client: SquallClient | null = null;

  constructor(options: SquallTargetOptions) {
    this.#url = options.url;
    this.#pool = options.pool ?? '/bench';
    this.#asked = options.durability ?? 'persisted';
    this.name = options.name ?? 'squall';
    this.durability = durabilityStatement(this.#asked, null);
  }

  async open({ concurrency }: OpenOptions): Promise<void> {
    // Saturating rows (64 batches of 100 × 64 KiB in flight) answer after 10 s and more: wait for them instead of
    // timing out and retrying (the default 10 s suits a member that stalls, not a queue that is long on purpose).
    this.#client = new SquallClient({
      url: this.#url,
      connections: Math.max(1, concurrency),
      bodySizeBytesMax: this.limits.requestBytesMax!,
      headersTimeoutMs: 120_000,
      retryTimeoutMs: 180_000,
    });
    const pool = await this.#client.createPool(this.#pool, { type: 'persistent' });
    const cluster = await this.#client.cluster();
    const shards = cluster.subgroups.find((s) => s.type === 'persistent' && s.subgroup === pool.subgroup)?.shards ?? [];
    this.durability = durabilityStatement(this.#asked, Math.min(...shards.map((s) => s.members.length)));
  }

  #key(key: string): string {
    return `${this.#pool}/${key}`;
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    const r = await this.#client!.put(this.#key(key), value, { durability: this.#asked });
    return r.timestamp_us;
  }

  #batch(entries: readonly KeyValue[]): Promise<BatchOpResult[]> {
    return this.#client!.batch(entries.map((e) => ({ op: 'put' as const, key: this.#key(e.key), value: e.value })), { encoding: 'msgpack', durability: this.#asked });
  }

  async putMany(entries: readonly KeyValue[]): Promise<number> {
    let ref = 0;
    for (const r of await this.#batch(entries)) ref = Math.max(ref, written(r).timestamp_us!);
    return ref;
  }

  /** One batch repeating the key: the store applies a shard's ops of a batch in order, as successive versions. */
  async putVersions(key: string, values: readonly Uint8Array[]): Promise<number[]> {
    const results = await this.#batch(values.map((value) => ({ key, value })));
    let version = -1;
    return results.map((r) => {
      const w = written(r);
      if (w.version! <= version) throw new Error(`batch of versions of ${key}: version ${w.version} after ${version} (not applied in order)`);
      version = w.version!;
      return w.timestamp_us!;
    });
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

function written(r: BatchOpResult): BatchOpResult {
  if (r.status !== 200) throw new Error(`batch put failed: ${r.status} ${r.error?.code}: ${r.error?.message}`);
  return r;
}

function durabilityStatement(asked: Durability, replicas: number | null): string {
  const on = replicas === null ? 'every replica' : `${replicas}/${replicas} replica${replicas === 1 ? '' : 's'}`;
  return asked === 'persisted' ? `persisted: fsync on ${on} before the answer` : `delivered: received by ${on} before the answer (fsync after it)`;
}
