import { SquallError } from '../api/errors.js';

/**
 * Callers waiting for a shard's frontier to pass a point. Every wait has a deadline; the number of
 * waiters is bounded (503 overloaded beyond it).
 *
 * - VersionWaiters: "until frontier ≥ v" for a frontier that only grows (delivered, persisted versions).
 *   Kept sorted by v, so a frontier move resolves a prefix: O(resolved), not O(waiters).
 * - ConditionWaiters: any condition, re-checked when a frontier moves and by timer (the stability frontier
 *   also follows the clock, so time alone can make the condition true).
 */
interface Deadline {
  timer: NodeJS.Timeout | null;
  resolve(): void;
  reject(e: Error): void;
}

function overloaded(max: number): SquallError {
  return new SquallError('overloaded', `too many waiting requests on one shard (${max}); retry shortly`, {}, 1);
}

export class VersionWaiters {
  readonly #frontier: () => number;
  readonly #max: number;
  /** Ascending by version. */
  #queue: Array<Deadline & { version: number }> = [];
  #failed: Error | null = null;

  constructor(frontier: () => number, max: number) {
    this.#frontier = frontier;
    this.#max = max;
  }

  get size(): number {
    return this.#queue.length;
  }

  wait(version: number, timeoutMs: number, onTimeout: () => Error): Promise<void> {
    if (this.#frontier() >= version) return Promise.resolve();
    if (this.#failed) return Promise.reject(this.#failed);
    if (timeoutMs <= 0) return Promise.reject(onTimeout());
    if (this.#queue.length >= this.#max) return Promise.reject(overloaded(this.#max));
    return new Promise<void>((resolve, reject) => {
      const w = { version, timer: null as NodeJS.Timeout | null, resolve, reject };
      w.timer = setTimeout(() => {
        const i = this.#queue.indexOf(w);
        if (i >= 0) this.#queue.splice(i, 1);
        reject(onTimeout());
      }, timeoutMs);
      const q = this.#queue;
      if (q.length === 0 || q[q.length - 1]!.version <= version) q.push(w);
      else {
        let lo = 0;
        let hi = q.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (q[mid]!.version <= version) lo = mid + 1;
          else hi = mid;
        }
        q.splice(lo, 0, w);
      }
    });
  }

  /** The frontier moved: resolve the waiters it passed. */
  notify(): void {
    const f = this.#frontier();
    const q = this.#queue;
    let n = 0;
    while (n < q.length && q[n]!.version <= f) n++;
    if (n === 0) return;
    const done = q.splice(0, n);
    for (const w of done) {
      clearTimeout(w.timer!);
      w.resolve();
    }
  }

  /** Rejects every waiter with `e`, and every later wait the frontier does not already answer (the shard failed). */
  rejectAll(e: Error): void {
    this.#failed = e;
    const all = this.#queue;
    this.#queue = [];
    for (const w of all) {
      clearTimeout(w.timer!);
      w.reject(e);
    }
  }
}

export class ConditionWaiters {
  readonly #waiters = new Set<Deadline & { check(): boolean; poll: NodeJS.Timeout | null }>();
  readonly #max: number;
  #failed: Error | null = null;

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#waiters.size;
  }

  /** Resolves when check() holds (re-checked on notify and every pollMs), rejects with onTimeout() after timeoutMs. */
  wait(check: () => boolean, timeoutMs: number, onTimeout: () => Error, pollMs: number): Promise<void> {
    if (check()) return Promise.resolve();
    if (this.#failed) return Promise.reject(this.#failed);
    if (timeoutMs <= 0) return Promise.reject(onTimeout());
    if (this.#waiters.size >= this.#max) return Promise.reject(overloaded(this.#max));
    return new Promise<void>((resolve, reject) => {
      const w = {
        check,
        timer: null as NodeJS.Timeout | null,
        poll: null as NodeJS.Timeout | null,
        resolve: () => {
          this.#drop(w);
          resolve();
        },
        reject: (e: Error) => {
          this.#drop(w);
          reject(e);
        },
      };
      w.timer = setTimeout(() => w.reject(onTimeout()), timeoutMs);
      w.poll = setInterval(() => {
        if (w.check()) w.resolve();
      }, pollMs);
      this.#waiters.add(w);
    });
  }

  notify(): void {
    for (const w of this.#waiters) if (w.check()) w.resolve();
  }

  /** Rejects every waiter with `e`, and every later wait whose condition does not already hold (the shard failed). */
  rejectAll(e: Error): void {
    this.#failed = e;
    for (const w of [...this.#waiters]) w.reject(e);
  }

  #drop(w: Deadline & { poll: NodeJS.Timeout | null }): void {
    clearTimeout(w.timer!);
    clearInterval(w.poll!);
    this.#waiters.delete(w as never);
  }
}
