import { SquallError } from '../api/errors.js';

/**
 * Callers waiting for a shard's frontier to pass a point (a version delivered or persisted, a time below
 * the stability frontier). Re-checked whenever a frontier moves, and by timer for conditions that time
 * alone makes true (the stability frontier follows the clock when nothing is pending). Every wait has a
 * deadline; the number of waiters is bounded.
 */
interface Waiter {
  check(): boolean;
  resolve(): void;
  reject(e: Error): void;
  deadline: NodeJS.Timeout | null;
  poll: NodeJS.Timeout | null;
}

export class FrontierWaiters {
  readonly #waiters = new Set<Waiter>();
  readonly #waitersMax: number;

  constructor(waitersMax: number) {
    this.#waitersMax = waitersMax;
  }

  get size(): number {
    return this.#waiters.size;
  }

  /**
   * Resolves when check() holds, rejects with `onTimeout()` after timeoutMs. pollMs > 0 also re-checks on
   * a timer (for clock-driven conditions).
   */
  wait(check: () => boolean, timeoutMs: number, onTimeout: () => Error, pollMs = 0): Promise<void> {
    if (check()) return Promise.resolve();
    if (timeoutMs <= 0) return Promise.reject(onTimeout());
    if (this.#waiters.size >= this.#waitersMax) {
      return Promise.reject(new SquallError('overloaded', `too many waiting reads (${this.#waitersMax})`, {}, 1));
    }
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        check,
        resolve: () => {
          this.#drop(w);
          resolve();
        },
        reject: (e) => {
          this.#drop(w);
          reject(e);
        },
        deadline: null,
        poll: null,
      };
      w.deadline = setTimeout(() => w.reject(onTimeout()), timeoutMs);
      if (pollMs > 0) {
        w.poll = setInterval(() => {
          if (w.check()) w.resolve();
        }, pollMs);
      }
      this.#waiters.add(w);
    });
  }

  /** A frontier moved: resolve every waiter whose condition now holds. */
  notify(): void {
    for (const w of this.#waiters) if (w.check()) w.resolve();
  }

  /** Fail every waiter (shutdown). */
  rejectAll(e: Error): void {
    for (const w of [...this.#waiters]) w.reject(e);
  }

  #drop(w: Waiter): void {
    if (w.deadline) clearTimeout(w.deadline);
    if (w.poll) clearInterval(w.poll);
    this.#waiters.delete(w);
  }
}
