import type { Operation } from './closed-loop.js';
import type { KvTarget, Op } from './target.js';

/**
 * The operations the benches run against a target: keys named prefix-kN spread uniformly at random,
 * values of one size, preloading of keys and versions, and reads checked for the right size and (for
 * reads at a past ref) the right version.
 */

/** Requests in flight while preloading keys. */
const preloadConcurrency = 16;
/** Entries per preload request for targets with putMany (further capped by the target's limits). */
const preloadBatchEntriesMax = 100;
/**
 * Value bytes per preload request and in flight across requests: large values (1 MiB) in batches of 100 at
 * 16 in flight put 1.6 GB at once on the peers, and Redis's WAIT or etcd's request timeout gave out.
 */
export const preloadRequestBytesMax = 4 * 1024 * 1024;
export const preloadInFlightBytesMax = 16 * 1024 * 1024;
/** Tries of each preload request (a peer that timed out under the preload gets a pause and another go). */
const preloadAttempts = 4;
const preloadRetryPauseMs = 500;

/** Entries per preload request and requests in flight for values of `valueBytes`, within the byte bounds above. */
export function preloadShape(target: KvTarget, valueBytes: number): { batchEntries: number; concurrency: number } {
  const wanted = Math.max(1, Math.min(preloadBatchEntriesMax, Math.floor(preloadRequestBytesMax / Math.max(1, valueBytes))));
  const batchEntries = batchEntriesFor(target, valueBytes, wanted);
  const concurrency = Math.max(1, Math.min(preloadConcurrency, Math.floor(preloadInFlightBytesMax / (batchEntries * Math.max(1, valueBytes)))));
  return { batchEntries, concurrency };
}
/** Allowance per entry, beyond its value, for key and framing when fitting entries into a request limit. */
export const entryOverheadBytes = 1024;
/** Share of puts in the mixed workload. */
export const mixedPutFraction = 0.1;

/** One cell of the matrix; every target gets one row for it. */
export interface Cell {
  op: Op;
  sizeBytes: number;
  batch: number;
  concurrency: number;
}

export const keyName = (prefix: string, i: number) => `${prefix}-k${i}`;
export const randomIndex = (n: number) => Math.floor(Math.random() * n);

/** Distinct random indexes below n (n ≥ count). */
function distinctIndexes(count: number, n: number): number[] {
  const picked = new Set<number>();
  while (picked.size < count) picked.add(randomIndex(n));
  return [...picked];
}

/** Version round v of a preloaded value carries v in its first 4 bytes, so get-past can check it read the right one. */
export function tagged(base: Uint8Array, round: number): Uint8Array {
  const value = Buffer.from(base);
  if (value.length >= 4) value.writeUInt32LE(round, 0);
  return value;
}
export function tagOf(value: Uint8Array): number | null {
  return value.length >= 4 ? Buffer.from(value.buffer, value.byteOffset, value.byteLength).readUInt32LE(0) : null;
}

/** Entries of one request to a target: `wanted`, within its batch and request-size limits. */
export function requestEntriesFor(target: KvTarget, valueBytes: number, wanted: number): number {
  const limits = target.limits ?? {};
  return Math.max(1, Math.min(wanted, limits.batchEntriesMax ?? Infinity, Math.floor((limits.requestBytesMax ?? Infinity) / (valueBytes + entryOverheadBytes))));
}

/** Entries per write request of distinct keys: requestEntriesFor, or 1 when the target has no batch writes. */
export function batchEntriesFor(target: KvTarget, valueBytes: number, wanted: number): number {
  return target.putMany ? requestEntriesFor(target, valueBytes, wanted) : 1;
}

/**
 * fn, tried up to `attempts` times with a doubling pause (retryPauseMs, 2×, 4×...) after each failure; the
 * last failure is thrown. For preloads that run for minutes: a view change answers a write 503 "retry".
 */
export async function withRetries<T>(attempts: number, retryPauseMs: number, fn: () => Promise<T>, onRetry?: (err: unknown, attempt: number) => void): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= attempts) throw err;
      onRetry?.(err, attempt);
      await new Promise((r) => setTimeout(r, retryPauseMs * 2 ** (attempt - 1)));
    }
  }
}

export interface WriteKeysOptions {
  /** Entries per request (already within the target's limits, see batchEntriesFor). */
  batchEntries: number;
  /** Requests in flight. */
  concurrency: number;
  /** After each request: the first key index it wrote, how many, and the ref it returned. */
  onWritten(firstKey: number, count: number, ref: unknown): void;
  /** Tries of each request (default 1: the first failure fails the whole write); a retry rewrites the request's keys. */
  attempts?: number;
  retryPauseMs?: number;
  onRetry?: (err: unknown, attempt: number) => void;
}

/** Keys prefix-k{from} .. prefix-k{to-1} written once each with `value`, in batches when the target has them. */
export async function writeKeys(target: KvTarget, prefix: string, from: number, to: number, value: Uint8Array, o: WriteKeysOptions): Promise<void> {
  const chunk = target.putMany ? o.batchEntries : 1;
  let next = from;
  const worker = async () => {
    while (next < to) {
      const first = next;
      const count = Math.min(chunk, to - first);
      next += count;
      const ref = await withRetries(o.attempts ?? 1, o.retryPauseMs ?? 0, () =>
        count > 1
          ? target.putMany!(Array.from({ length: count }, (_, i) => ({ key: keyName(prefix, first + i), value })))
          : target.put(keyName(prefix, first), value),
        o.onRetry);
      o.onWritten(first, count, ref);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
}

/**
 * Keys firstKey .. keys-1 written `versions` times each, in rounds so a key's versions are in order; value
 * round v is tagged v. Returns refs[key - firstKey][round].
 */
export async function preload(target: KvTarget, prefix: string, keys: number, versions: number, base: Uint8Array, firstKey = 0): Promise<unknown[][]> {
  const refs: unknown[][] = Array.from({ length: keys - firstKey }, () => []);
  const { batchEntries, concurrency } = preloadShape(target, base.length);
  for (let round = 0; round < versions; round++) {
    await writeKeys(target, prefix, firstKey, keys, tagged(base, round), {
      batchEntries,
      concurrency,
      attempts: preloadAttempts,
      retryPauseMs: preloadRetryPauseMs,
      onWritten: (first, count, ref) => {
        for (let i = first; i < first + count; i++) refs[i - firstKey]![round] = ref;
      },
    });
  }
  return refs;
}

/** The operation a cell runs against a target, over keys prefix-k0 .. prefix-k(keys-1). */
export function operationFor(target: KvTarget, cell: Cell, prefix: string, keys: number, base: Uint8Array, refs: unknown[][] | null): Operation {
  const expectLength = (v: Uint8Array | null, key: string) => {
    if (v === null) throw new Error(`${key}: not found`);
    if (v.length !== cell.sizeBytes) throw new Error(`${key}: read ${v.length} bytes, expected ${cell.sizeBytes}`);
    return v;
  };
  const get = async () => {
    const key = keyName(prefix, randomIndex(keys));
    expectLength(await target.get(key), key);
    return 1;
  };
  const put = async () => {
    await target.put(keyName(prefix, randomIndex(keys)), base);
    return 1;
  };
  switch (cell.op) {
    case 'put':
      if (cell.batch === 1) return put;
      return async () => {
        await target.putMany!(distinctIndexes(cell.batch, keys).map((i) => ({ key: keyName(prefix, i), value: base })));
        return cell.batch;
      };
    case 'get':
      return get;
    case 'mixed':
      return () => (Math.random() < mixedPutFraction ? put() : get());
    case 'get-past': {
      if (!refs || !target.getPast) throw new Error('get-past needs preloaded refs and getPast');
      const getPast = target.getPast.bind(target);
      return async () => {
        const i = randomIndex(keys);
        const keyRefs = refs[i]!;
        const round = randomIndex(keyRefs.length);
        const key = keyName(prefix, i);
        const value = expectLength(await getPast(key, keyRefs[round]), key);
        const tag = tagOf(value);
        if (tag !== null && tag !== round) throw new Error(`${key}: read version ${tag} at the ref of version ${round}`);
        return 1;
      };
    }
  }
}

