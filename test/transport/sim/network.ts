import type { DriverListener, MemberAddress, TransportDriver } from '../../../src/transport/driver.js';
import type { Rng } from './random.js';
import type { Owner, Scheduler } from './scheduler.js';

/**
 * The simulated network: one reliable FIFO link per pair of live processes, with random delays, that
 * the fault injector can cut (link drop, partition) and heal. Frames in flight when a link breaks are
 * lost and both ends see linkDown; frames pushed while a link is down wait (bounded) and go out when it
 * comes back, as with the TCP driver. A crashed process's endpoint disappears (its links go down).
 */

interface Endpoint {
  readonly id: number;
  readonly incarnation: number;
  readonly owner: Owner;
  readonly listener: DriverListener;
}

interface Link {
  up: boolean;
  epoch: number;
}

const QUEUED_FRAMES_MAX = 20_000;

export class SimNetwork {
  readonly #sched: Scheduler;
  readonly #rng: Rng;
  readonly #endpoints = new Map<number, Endpoint>();
  readonly #links = new Map<string, Link>();
  readonly #blocked = new Map<string, number>();
  readonly #lastAt = new Map<string, number>();
  readonly #queued = new Map<string, Uint8Array[]>();
  framesSent = 0;
  bytesSent = 0;

  constructor(sched: Scheduler, rng: Rng) {
    this.#sched = sched;
    this.#rng = rng;
  }

  static pair(a: number, b: number): string {
    return a < b ? `${a}-${b}` : `${b}-${a}`;
  }

  #delayUs(): number {
    const r = this.#rng.next();
    if (r < 0.9) return 50 + Math.floor(this.#rng.next() * 1500);
    if (r < 0.99) return 1000 + Math.floor(this.#rng.next() * 10_000);
    return 10_000 + Math.floor(this.#rng.next() * 60_000);
  }

  register(e: Endpoint): void {
    this.#endpoints.set(e.id, e);
    for (const other of this.#endpoints.keys()) if (other !== e.id) this.#refresh(e.id, other);
  }

  unregister(id: number, incarnation: number): void {
    const e = this.#endpoints.get(id);
    if (!e || e.incarnation !== incarnation) return;
    this.#endpoints.delete(id);
    for (const other of this.#endpoints.keys()) {
      this.#refresh(id, other);
      this.#queued.delete(`${other}>${id}`);
      this.#queued.delete(`${id}>${other}`);
    }
  }

  /** Cut the link between a and b (nested cuts count). */
  block(a: number, b: number): void {
    const k = SimNetwork.pair(a, b);
    this.#blocked.set(k, (this.#blocked.get(k) ?? 0) + 1);
    this.#refresh(a, b);
  }

  unblock(a: number, b: number): void {
    const k = SimNetwork.pair(a, b);
    const n = (this.#blocked.get(k) ?? 0) - 1;
    if (n <= 0) this.#blocked.delete(k);
    else this.#blocked.set(k, n);
    this.#refresh(a, b);
  }

  healAll(): void {
    const pairs = [...this.#blocked.keys()];
    this.#blocked.clear();
    for (const k of pairs) {
      const [a, b] = k.split('-').map(Number) as [number, number];
      this.#refresh(a, b);
    }
  }

  #refresh(a: number, b: number): void {
    const k = SimNetwork.pair(a, b);
    const ea = this.#endpoints.get(a);
    const eb = this.#endpoints.get(b);
    const should = ea !== undefined && eb !== undefined && !this.#blocked.has(k);
    let link = this.#links.get(k);
    if (!link) {
      link = { up: false, epoch: 0 };
      this.#links.set(k, link);
    }
    if (link.up === should) return;
    link.up = should;
    link.epoch++;
    const epoch = link.epoch;
    const now = this.#sched.nowUs;
    if (should) {
      // Both ends learn the other's incarnation, then queued frames go out in order.
      this.#sched.at(now + this.#delayUs(), () => ea!.listener.linkUp(b, eb!.incarnation), ea!.owner);
      this.#sched.at(now + this.#delayUs(), () => eb!.listener.linkUp(a, ea!.incarnation), eb!.owner);
      for (const [from, to] of [
        [a, b],
        [b, a],
      ] as const) {
        const q = this.#queued.get(`${from}>${to}`);
        this.#queued.delete(`${from}>${to}`);
        for (const f of q ?? []) this.#transmit(from, to, f, epoch);
      }
    } else {
      if (ea) this.#sched.at(now, () => ea.listener.linkDown(b), ea.owner);
      if (eb) this.#sched.at(now, () => eb.listener.linkDown(a), eb.owner);
    }
  }

  send(from: number, to: number, frame: Uint8Array): void {
    const k = SimNetwork.pair(from, to);
    const link = this.#links.get(k);
    if (!link?.up) {
      if (!this.#endpoints.has(to)) return; // a dead process: the frame goes nowhere
      const qk = `${from}>${to}`;
      const q = this.#queued.get(qk) ?? [];
      if (q.length >= QUEUED_FRAMES_MAX) q.shift();
      q.push(frame);
      this.#queued.set(qk, q);
      return;
    }
    this.#transmit(from, to, frame, link.epoch);
  }

  #transmit(from: number, to: number, frame: Uint8Array, epoch: number): void {
    const dir = `${from}>${to}`;
    const at = Math.max(this.#lastAt.get(dir) ?? 0, this.#sched.nowUs + this.#delayUs());
    this.#lastAt.set(dir, at);
    const dest = this.#endpoints.get(to)!;
    this.framesSent++;
    this.bytesSent += frame.length;
    this.#sched.at(
      at,
      () => {
        const link = this.#links.get(SimNetwork.pair(from, to));
        if (!link || link.epoch !== epoch || !link.up) return;
        if (this.#endpoints.get(to) !== dest) return;
        dest.listener.frame(from, frame);
      },
      dest.owner,
    );
  }
}

/** The TransportDriver of one simulated process. */
export class SimDriver implements TransportDriver {
  readonly selfId: number;
  #started = false;

  constructor(
    readonly net: SimNetwork,
    selfId: number,
    readonly incarnation: number,
    readonly owner: Owner,
  ) {
    this.selfId = selfId;
  }

  async start(listener: DriverListener): Promise<void> {
    this.#started = true;
    this.net.register({ id: this.selfId, incarnation: this.incarnation, owner: this.owner, listener });
  }

  setPeers(_peers: readonly MemberAddress[]): void {}

  push(to: readonly number[], parts: readonly Uint8Array[]): void {
    if (!this.#started) return;
    // Frames are immutable once pushed (the core never writes to them again): no copy for one part.
    let frame: Uint8Array;
    if (parts.length === 1) frame = parts[0]!;
    else {
      let n = 0;
      for (const p of parts) n += p.length;
      frame = new Uint8Array(n);
      let at = 0;
      for (const p of parts) {
        frame.set(p, at);
        at += p.length;
      }
    }
    for (const peer of to) this.net.send(this.selfId, peer, frame);
  }

  flush(): void {}

  async close(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    this.net.unregister(this.selfId, this.incarnation);
  }
}
