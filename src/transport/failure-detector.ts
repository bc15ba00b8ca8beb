import { assert } from '../assert.js';

/**
 * Heartbeat failure detection for one view, as a pure state machine (tick(nowUs) in, suspects out).
 *
 * Any frame from a member counts as a heartbeat. A member is reported once nothing was heard from it for
 * `missedMax` of its own heartbeat periods (each member publishes its period in its control row). Time
 * this member itself did not run (its own ticks arriving late: CPU starvation, a paused process) is not
 * counted against the others: their silence while we were not reading our sockets proves nothing.
 *
 * Invariants: a member is reported at most once per watch(); reports only follow at least `missedMax`
 * periods of observed silence; the silence clock of every member restarts at watch().
 */
export class FailureDetector {
  readonly #defaultPeriodMs: number;
  readonly #missedMax: number;
  #lastHeardUs = new Map<number, number>();
  #heard = new Set<number>();
  #periodMs = new Map<number, number>();
  #reported = new Set<number>();
  #lastTickUs: number | null = null;

  constructor(defaultPeriodMs: number, missedMax: number) {
    assert(defaultPeriodMs > 0 && missedMax >= 2, 'bad failure detector bounds');
    this.#defaultPeriodMs = defaultPeriodMs;
    this.#missedMax = missedMax;
  }

  /** Watch exactly these peers from now on (a new view). */
  watch(peers: readonly number[], nowUs: number): void {
    this.#lastHeardUs = new Map(peers.map((p) => [p, nowUs]));
    this.#heard.clear();
    this.#reported.clear();
    this.#periodMs = new Map([...this.#periodMs].filter(([p]) => this.#lastHeardUs.has(p)));
  }

  heard(peer: number): void {
    this.#heard.add(peer);
  }

  setPeriod(peer: number, periodMs: number): void {
    if (periodMs > 0) this.#periodMs.set(peer, periodMs);
  }

  /** The silence budget of `peer` in µs. */
  timeoutUs(peer: number): number {
    return (this.#periodMs.get(peer) ?? this.#defaultPeriodMs) * this.#missedMax * 1000;
  }

  /** Advance to nowUs; returns the peers newly found silent for too long. */
  tick(nowUs: number): number[] {
    const last = this.#lastTickUs;
    this.#lastTickUs = nowUs;
    const slackUs = 2 * this.#defaultPeriodMs * 1000;
    if (last !== null && nowUs - last > slackUs) {
      // We were not running: do not count the gap (beyond one period) against anyone.
      const shift = nowUs - last - this.#defaultPeriodMs * 1000;
      for (const [p, t] of this.#lastHeardUs) this.#lastHeardUs.set(p, t + shift);
    }
    for (const p of this.#heard) if (this.#lastHeardUs.has(p)) this.#lastHeardUs.set(p, nowUs);
    this.#heard.clear();
    const out: number[] = [];
    for (const [p, t] of this.#lastHeardUs) {
      if (this.#reported.has(p)) continue;
      if (nowUs - t > this.timeoutUs(p)) {
        this.#reported.add(p);
        out.push(p);
      }
    }
    return out;
  }
}
