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
