import { wallClockUs } from './clock.js';

/**
 * The scheduling a runtime needs around the pure protocol core: the clock, "after this turn" (the
 * coalescing point for batches and row pushes) and timers. nodeEventLoop is the real one; the
 * simulation supplies a virtual-time one, so the same runtime code runs in both.
 */
export interface Cancel {
  cancel(): void;
}

export interface EventLoop {
  nowUs(): number;
  /** Run fn once the current turn's I/O callbacks are done (setImmediate). */
  defer(fn: () => void): void;
  after(ms: number, fn: () => void): Cancel;
  every(ms: number, fn: () => void): Cancel;
}

export const nodeEventLoop: EventLoop = {
  nowUs: wallClockUs,
  defer: (fn) => {
    setImmediate(fn);
  },
  after: (ms, fn) => {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
  every: (ms, fn) => {
    const t = setInterval(fn, ms);
    return { cancel: () => clearInterval(t) };
  },
};
