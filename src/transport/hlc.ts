import { assert } from '../assert.js';

/**
 * Hybrid logical clock in integer microseconds. `tick(nowUs)` never returns less than the previous value:
 * when the wall clock is behind the last timestamp (skew, or a later timestamp seen from a peer), the
 * clock stays at the last value. Equal timestamps are allowed; versions, not timestamps, order messages.
 */
export class HybridClock {
  #lastUs: number;

  constructor(lastUs = 0) {
    assert(Number.isSafeInteger(lastUs) && lastUs >= 0, `bad HLC start ${lastUs}`);
    this.#lastUs = lastUs;
  }

  get lastUs(): number {
    return this.#lastUs;
  }

  /** A timestamp for a local event at wall time nowUs. */
  tick(nowUs: number): number {
    if (nowUs > this.#lastUs) this.#lastUs = Math.floor(nowUs);
    return this.#lastUs;
  }

  /** Merge a timestamp seen in a message so later local ticks are not below it. */
  observe(remoteUs: number): void {
    if (remoteUs > this.#lastUs) this.#lastUs = remoteUs;
  }
}
