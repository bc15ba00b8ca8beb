import { assert } from '../../../src/assert.js';
import type { Cancel, EventLoop } from '../../../src/transport/event-loop.js';

/**
 * Virtual time for the simulation: a heap of events ordered by (time, insertion order). Every event may
 * belong to an owner (one simulated process): a crashed owner's events are dropped (epoch), a paused
 * owner's events wait until it resumes (in their original order).
 */
export class Owner {
  epoch = 0;
  pausedUntilUs = 0;
  constructor(readonly key: string) {}
}

/** Promise-chain depth the simulation completes within one event (storage → core → flush needs ~4). */
const MICROTASK_TURNS = 8;

interface Ev {
  t: number;
  seq: number;
  fn: () => void;
  owner: Owner | null;
  epoch: number;
}

export class Scheduler {
  nowUs = 0;
  #heap: Ev[] = [];
  #seq = 0;
  events = 0;

  at(tUs: number, fn: () => void, owner: Owner | null = null): void {
    assert(tUs >= this.nowUs, `event in the past: ${tUs} < ${this.nowUs}`);
    this.#push({ t: tUs, seq: this.#seq++, fn, owner, epoch: owner?.epoch ?? 0 });
  }

  /**
   * Run events until time limitUs or until stop() holds (checked after each event). After every event
   * the pending promise jobs run (a bounded number of microtask turns), so async completions of that
   * event (storage, state-transfer hooks) happen at the same virtual instant, deterministically.
   */
  async run(limitUs: number, stop: () => boolean = () => false, eventsMax = Infinity): Promise<void> {
    while (this.#heap.length > 0 && this.#heap[0]!.t <= limitUs) {
      const ev = this.#pop();
      if (ev.owner) {
        if (ev.owner.epoch !== ev.epoch) continue;
        if (ev.owner.pausedUntilUs > ev.t) {
          this.#push({ ...ev, t: ev.owner.pausedUntilUs, seq: this.#seq++ });
          continue;
        }
      }
      this.nowUs = ev.t;
      this.events++;
      ev.fn();
      for (let i = 0; i < MICROTASK_TURNS; i++) await null;
      if (stop()) return;
      if (this.events > eventsMax) throw new Error(`simulation exceeded ${eventsMax} events`);
    }
    if (this.nowUs < limitUs) this.nowUs = limitUs;
  }

  /** An EventLoop for one process (its clock may be skewed). */
  loop(owner: Owner, skewUs: number): EventLoop {
    return {
      nowUs: () => this.nowUs + skewUs,
      defer: (fn) => this.at(this.nowUs, fn, owner),
      after: (ms, fn): Cancel => {
        let cancelled = false;
        this.at(this.nowUs + ms * 1000, () => {
          if (!cancelled) fn();
        }, owner);
        return { cancel: () => (cancelled = true) };
      },
      every: (ms, fn): Cancel => {
        let cancelled = false;
        const step = (): void => {
          if (cancelled) return;
          fn();
          this.at(this.nowUs + ms * 1000, step, owner);
        };
        this.at(this.nowUs + ms * 1000, step, owner);
        return { cancel: () => (cancelled = true) };
      },
    };
  }

  #less(a: Ev, b: Ev): boolean {
    return a.t < b.t || (a.t === b.t && a.seq < b.seq);
  }

  #push(ev: Ev): void {
    const h = this.#heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  #pop(): Ev {
    const h = this.#heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.#less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.#less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
