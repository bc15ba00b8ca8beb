import { loadavg } from 'node:os';
import { build, type Histogram } from 'hdr-histogram-js';

/**
 * Closed-loop load: `concurrency` workers each issue one operation, wait for it, and issue the next, until
 * the deadline. Latencies go into an HDR histogram in microseconds (3 significant digits).
 */

/** An operation; resolves to the number of entries it read or wrote (a batch of N puts counts N). */
export type Operation = () => Promise<number>;

export interface LoopResult {
  /** Entries completed (sum of what the operations returned). */
  entries: number;
  /** Requests completed without error. */
  requests: number;
  errors: number;
  lastError?: string;
  /** From the first start to the last completion. */
  elapsedMs: number;
  /** Latency per request, µs; null when not recording (warm-up). */
  histogram: Histogram | null;
  /** The loop stopped early after too many consecutive errors. */
  aborted: boolean;
}

export interface LoopOptions {
  concurrency: number;
  durationMs: number;
  record: boolean;
  /** Stop a worker after this many errors in a row (a target that is down would otherwise spin). */
  consecutiveErrorsMax?: number;
  /** Called about every progressIntervalMs with the elapsed time. */
  onProgress?: (elapsedMs: number) => void;
  progressIntervalMs?: number;
}

/** Highest latency the histogram tracks exactly; longer ones are clamped to it (and show as p99 = this). */
export const latencyUsMax = 60_000_000;

export async function closedLoop(op: Operation, options: LoopOptions): Promise<LoopResult> {
  const consecutiveErrorsMax = options.consecutiveErrorsMax ?? 100;
  const histogram = options.record ? build({ lowestDiscernibleValue: 1, highestTrackableValue: latencyUsMax, numberOfSignificantValueDigits: 3, autoResize: false }) : null;
  const result: LoopResult = { entries: 0, requests: 0, errors: 0, elapsedMs: 0, histogram, aborted: false };
  const start = performance.now();
  const deadline = start + options.durationMs;
  const timer = options.onProgress
    ? setInterval(() => options.onProgress!(Math.min(performance.now() - start, options.durationMs)), options.progressIntervalMs ?? 250)
    : null;
  const worker = async () => {
    let errorsInRow = 0;
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        const entries = await op();
        const us = Math.round((performance.now() - t0) * 1000);
        histogram?.recordValue(Math.min(Math.max(us, 1), latencyUsMax));
        result.entries += entries;
        result.requests++;
        errorsInRow = 0;
      } catch (err) {
        result.errors++;
        result.lastError = err instanceof Error ? err.message : String(err);
        if (++errorsInRow >= consecutiveErrorsMax) {
          result.aborted = true;
          return;
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  } finally {
    if (timer) clearInterval(timer);
  }
  result.elapsedMs = performance.now() - start;
  return result;
}

/** The numbers of one measured run. */
export interface RunSample {
  /** Entries per second. */
  opsPerS: number;
  p50Ms: number | null;
  p99Ms: number | null;
  errors: number;
  lastError?: string;
  /** 1-minute load average at the end of the run. */
  load1m: number;
}

export interface RunOptions {
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  /** Elapsed ms since the warm-up started, about every 250 ms. */
  onProgress?: (elapsedMs: number) => void;
}

/** A warm-up (not recorded) then a measured closed loop of the same operation. */
export async function measureRun(op: Operation, o: RunOptions): Promise<RunSample> {
  const progress = (offsetMs: number) => (o.onProgress ? { onProgress: (ms: number) => o.onProgress!(offsetMs + ms) } : {});
  if (o.warmupMs > 0) await closedLoop(op, { concurrency: o.concurrency, durationMs: o.warmupMs, record: false, ...progress(0) });
  const res = await closedLoop(op, { concurrency: o.concurrency, durationMs: o.durationMs, record: true, ...progress(o.warmupMs) });
  const h = res.histogram!;
  return {
    opsPerS: res.entries / (res.elapsedMs / 1000),
    p50Ms: h.totalCount > 0 ? h.getValueAtPercentile(50) / 1000 : null,
    p99Ms: h.totalCount > 0 ? h.getValueAtPercentile(99) / 1000 : null,
    errors: res.errors,
    ...(res.lastError !== undefined ? { lastError: res.lastError } : {}),
    load1m: loadavg()[0] ?? 0,
  };
}
