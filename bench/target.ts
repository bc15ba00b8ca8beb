/**
 * What the KV bench drives: one adapter per system (Squall through its TypeScript client, etcd, Redis),
 * each through its own client path. The harness (bench/kv.ts) owns workers, timing, histograms and output;
 * adapters only do one operation per call and say what durability a write got.
 */

/** One row of results, as printed and as written by --json. */
export interface BenchRow {
  target: string;
  op: string;
  size_bytes: number;
  concurrency: number;
  batch: number;
  ops_per_s: number;
  mb_per_s: number;
  p50_ms: number;
  p99_ms: number;
  /** What an acknowledged write guaranteed in this row (e.g. "persisted on 3/3 replicas (fsync)"). */
  durability?: string;
  /** Runs the medians were taken over. */
  runs?: number;
}

export interface KeyValue {
  key: string;
  value: Uint8Array;
}

/**
 * A target. `Ref` is the target's own handle on a past state, returned by put and understood by getPast
 * (Squall: a timestamp or version; etcd: a revision). Targets that cannot read the past leave getPast out.
 */
export interface KvTarget<Ref = unknown> {
  readonly name: string;
  /** Durability of an acknowledged write, printed with every write row. */
  readonly durability: string;
  /** Connect and create what the workload needs (pools, etc.). */
  open(): Promise<void>;
  put(key: string, value: Uint8Array): Promise<Ref>;
  /** Several writes in one request (Squall batch, etcd txn, Redis pipeline). */
  putMany?(entries: readonly KeyValue[]): Promise<Ref>;
  get(key: string): Promise<Uint8Array | null>;
  getPast?(key: string, ref: Ref): Promise<Uint8Array | null>;
  close(): Promise<void>;
}
