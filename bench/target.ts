/**
 * What the KV bench drives: one adapter per system (Squall through its TypeScript client, etcd, Redis),
 * each through its own client path. The harness (bench/kv.ts) owns workers, timing, histograms and output;
 * adapters only do one operation per call and say what guarantee it gave.
 */

/** The workloads of the KV bench. */
export type Op = 'put' | 'get' | 'get-past' | 'mixed';
export const allOps: readonly Op[] = ['put', 'get', 'get-past', 'mixed'];

/**
 * One row of results, as printed and as written by --json. Throughput and latencies are medians over
 * `runs` runs; they are null when the target cannot do the workload (`note` says why, e.g. Redis has no
 * reads at a past version).
 */
export interface BenchRow {
  target: string;
  op: Op;
  size_bytes: number;
  concurrency: number;
  /** Entries per request: 1 for single requests, N for batch rows (puts only). */
  batch: number;
  /** Entries (keys read or written) per second; a batch request of N puts counts N. */
  ops_per_s: number | null;
  /** ops_per_s × size_bytes / 10^6. */
  mb_per_s: number | null;
  /** Latency of one request (one batch for batch rows). */
  p50_ms: number | null;
  p99_ms: number | null;
  /** What an acknowledged write guaranteed in this row (e.g. "fsync on a majority of 3"); reads state their consistency. */
  durability: string;
  /** Runs the medians were taken over. */
  runs: number;
  /** Distinct keys the row spread its operations over. */
  keys: number;
  /** Failed operations over all runs (not counted in ops_per_s), with the last error message. */
  errors: number;
  last_error?: string;
  /** Median over runs of the 1-minute load average sampled at the end of each run. */
  load_1m: number | null;
  /** Why the row has no numbers, when it has none. */
  note?: string;
}

export interface KeyValue {
  key: string;
  value: Uint8Array;
}

export interface OpenOptions {
  /** The most operations the harness will have in flight at once: size connection pools to it. */
  concurrency: number;
}

/** Request limits of a target; the harness marks rows that would exceed them n/a instead of failing. */
export interface TargetLimits {
  /** Largest request body (sum of values for a batch) the target accepts. */
  requestBytesMax?: number;
  /** Most entries in one putMany. */
  batchEntriesMax?: number;
}

/**
 * A target. `Ref` is the target's own handle on a past state, returned by put and putMany and understood
 * by getPast (Squall: a timestamp or version; etcd: a revision). A ref returned by putMany is valid for
 * every key of that batch. Targets that cannot read the past leave getPast out.
 */
export interface KvTarget<Ref = unknown> {
  readonly name: string;
  /** Durability of an acknowledged write, printed with every write row. */
  readonly durability: string;
  /** Consistency of reads, printed with read rows: current reads and reads at a past ref. */
  readonly readConsistency: { get: string; getPast?: string };
  readonly limits?: TargetLimits;
  /** Connect and create what the workload needs (pools, etc.). Called once before any operation. */
  open(options: OpenOptions): Promise<void>;
  put(key: string, value: Uint8Array): Promise<Ref>;
  /** Several writes in one request (Squall batch, etcd txn, Redis MULTI/EXEC); keys are distinct. */
  putMany?(entries: readonly KeyValue[]): Promise<Ref>;
  /**
   * Successive versions of one key in one request, applied in the order given; resolves to the ref of each
   * (Squall: one batch repeating the key). Targets whose batches cannot repeat a key (etcd txn) leave it out.
   */
  putVersions?(key: string, values: readonly Uint8Array[]): Promise<Ref[]>;
  /** The current value, or null if the key has none. */
  get(key: string): Promise<Uint8Array | null>;
  /** The value the key had at ref, or null if it had none. */
  getPast?(key: string, ref: Ref): Promise<Uint8Array | null>;
  close(): Promise<void>;
}
