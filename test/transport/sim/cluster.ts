import { pino } from 'pino';
import { parseGroupConfig, type GroupConfig } from '../../../src/transport/config.js';
import type { ViewEvent } from '../../../src/transport/group.js';
import { GroupMember } from '../../../src/transport/member.js';
import type { Delivered } from '../../../src/transport/ordered-shard.js';
import { SimDriver, SimNetwork } from './network.js';
import { Rng } from './random.js';
import { Owner, Scheduler } from './scheduler.js';
import { SimDurable, SimStore } from './store.js';

/**
 * A whole group in one process on virtual time: nodes with durable state, processes (a node's current
 * incarnation) running the real GroupMember on the simulated network, a random workload, a random fault
 * schedule, and a trace of what every process received, delivered and installed (for checker.ts).
 */

export interface SimParams {
  readonly seed: number;
  readonly members: number;
  readonly spares: number;
  readonly shards: number;
  readonly replicas: number;
  /** Faults are injected in [1 s, faultUntilUs). */
  readonly faultUntilUs: number;
  /** After faults stop, liveness must be reached within this much simulated time. */
  readonly livenessBoundUs: number;
  readonly faults: boolean;
  readonly verbose: boolean;
  /** Overrides of the group configuration (scenario tests). */
  readonly config?: Record<string, unknown>;
  /** Random workload from every member (default true). */
  readonly workload?: boolean;
}

export function paramsForSeed(seed: number, overrides: Partial<SimParams> = {}): SimParams {
  const rng = new Rng(seed ^ 0x5eed);
  const members = rng.int(3, 7);
  return {
    seed,
    members,
    spares: rng.int(0, 2),
    shards: rng.int(1, 3),
    replicas: rng.int(1, 3),
    faultUntilUs: rng.int(5, 11) * 1_000_000,
    livenessBoundUs: 60_000_000,
    faults: true,
    verbose: false,
    ...overrides,
  };
}

export interface ViewRecord {
  readonly vid: number;
  readonly members: readonly number[];
  readonly shards: readonly (readonly number[])[];
  readonly myShards: readonly number[];
  readonly atUs: number;
}

export interface DeliveryRecord {
  readonly v: number;
  readonly id: string;
  readonly sender: number;
  readonly kind: 'stable' | 'trim';
  readonly atUs: number;
}

/** Everything one process (node incarnation) did. */
export interface ProcessTrace {
  readonly key: string;
  readonly id: number;
  readonly incarnation: number;
  readonly views: ViewRecord[];
  /** `${vid}/${shard}/${rank}` → [(time, count)], counts increasing. */
  readonly received: Map<string, Array<[number, number]>>;
  /** `${vid}/${shard}` → deliveries in order. */
  readonly delivered: Map<string, DeliveryRecord[]>;
  readonly sent: Set<string>;
  /** Times this process left the group (removed, minority) before rejoining. */
  readonly stops: number[];
  endUs: number | null;
}

interface Process {
  readonly id: number;
  readonly incarnation: number;
  readonly owner: Owner;
  readonly member: GroupMember;
  readonly store: SimStore;
  readonly driver: SimDriver;
  readonly trace: ProcessTrace;
  sendCounter: number;
}

interface Node {
  readonly id: number;
  readonly durable: SimDurable;
  readonly skewUs: number;
  proc: Process | null;
  incarnations: number;
  started: boolean;
}

export class SimCluster {
  readonly params: SimParams;
  readonly rng: Rng;
  readonly sched = new Scheduler();
  readonly net: SimNetwork;
  readonly config: GroupConfig;
  readonly nodes = new Map<number, Node>();
  readonly traces: ProcessTrace[] = [];
  readonly failures: string[] = [];
  readonly faultLog: string[] = [];
  /** Highest persisted frontier any process reported, per shard name. */
  readonly persistedFrontier = new Map<string, number>();
  /** For that frontier: the (version, payload id) entries at or below it in the reporter's log then. */
  readonly persistedSnapshot = new Map<string, Array<[number, string]>>();
  #workload = true;
  #stopped = false;

  constructor(params: SimParams) {
    this.params = params;
    this.rng = new Rng(params.seed);
    this.net = new SimNetwork(this.sched, this.rng);
    const ids = Array.from({ length: params.members }, (_, i) => i + 1);
    this.config = parseGroupConfig({
      groupName: `sim-${params.seed}`,
      members: ids.map((id) => ({ id, host: 'sim', port: 1000 + id })),
      layout: { subgroups: [{ type: 'persistent', shards: params.shards, replicas: params.replicas, minReplicas: 1 }] },
      heartbeatPeriodMs: 50,
      suspectAfterMissedHeartbeats: 10,
      joinRetryMs: 100,
      joinBatchMs: 20,
      restartGraceMs: 300,
      stateTransferTimeoutMs: 2000,
      windowPayloads: 64,
      batchBytesMax: 4096,
      inlinePayloadBytesMax: 512,
      nullLookaheadMax: 64,
      p2pTimeoutMs: 500,
      ...params.config,
    });
    this.#workload = params.workload ?? true;
    for (let id = 1; id <= params.members + params.spares; id++) {
      this.nodes.set(id, { id, durable: new SimDurable(), skewUs: this.rng.int(-5000, 5000), proc: null, incarnations: 0, started: false });
    }
  }

  #note(msg: string): void {
    const line = `[${(this.sched.nowUs / 1e6).toFixed(3)}s] ${msg}`;
    this.faultLog.push(line);
    if (this.params.verbose) process.stderr.write(`${line}\n`);
  }

  fail(message: string): void {
    if (this.failures.length < 50) this.failures.push(`[${(this.sched.nowUs / 1e6).toFixed(3)}s] ${message}`);
  }

  // ------------------------------------------------------------------ processes

  startNode(id: number): void {
    const node = this.nodes.get(id)!;
    if (node.proc) return;
    node.started = true;
    node.incarnations++;
    const incarnation = node.incarnations;
    const key = `${id}.${incarnation}`;
    const owner = new Owner(key);
    const driver = new SimDriver(this.net, id, incarnation, owner);
    const trace: ProcessTrace = {
      key,
      id,
      incarnation,
      views: [],
      received: new Map(),
      delivered: new Map(),
      sent: new Set(),
      stops: [],
      endUs: null,
    };
    this.traces.push(trace);
    const store = new SimStore(node.durable, this.sched, this.rng, owner, {
      violation: (m) => this.fail(`${key}: store: ${m}`),
      persistedFrontier: (shard, v) => {
        if (v <= (this.persistedFrontier.get(shard) ?? -1)) return;
        this.persistedFrontier.set(shard, v);
        const log = node.proc?.store.logs.get(shard) ?? store.logs.get(shard) ?? [];
        this.persistedSnapshot.set(shard, log.filter((e) => e.v <= v).map((e) => [e.v, e.id]));
      },
    });
    const log = this.params.verbose && process.env.SIM_LOG
      ? pino({ level: process.env.SIM_LOG, base: { key } }, pino.destination(2)).child({})
      : pino({ level: 'silent' });
    const member = new GroupMember({
      config: this.config,
      selfId: id,
      address: { id, host: 'sim', port: 1000 + id },
      incarnation,
      driver,
      storage: node.durable.transport,
      stateTransfer: store,
      loop: this.sched.loop(owner, node.skewUs),
      log,
      startMode: 'auto',
      rejoin: 'auto',
      events: {
        view: (e: ViewEvent) => this.#onView(trace, e),
        stopped: (kind, reason) => {
          trace.stops.push(this.sched.nowUs);
          this.#note(`${key} stops (${kind}): ${reason}`);
        },
        fatal: (err) => this.fail(`${key}: fatal: ${err.message}`),
      },
      trace: {
        received: (shard, vid, rank, count) => {
          const k = `${vid}/${shard}/${rank}`;
          let list = trace.received.get(k);
          if (!list) trace.received.set(k, (list = []));
          list.push([this.sched.nowUs, count]);
        },
        delivered: (shard, vid, batch: readonly Delivered[], kind) => {
          const k = `${vid}/${shard}`;
          let list = trace.delivered.get(k);
          if (!list) trace.delivered.set(k, (list = []));
          for (const d of batch) list.push({ v: d.version, id: Buffer.from(d.payload).toString(), sender: d.sender, kind, atUs: this.sched.nowUs });
        },
      },
    });
    store.attach(member);
    const proc: Process = { id, incarnation, owner, member, store, driver, trace, sendCounter: 0 };
    node.proc = proc;
    this.#note(`start ${key}`);
    void member.start().catch((e: unknown) => this.fail(`${key}: start failed: ${String(e)}`));
    this.#scheduleSend(proc);
  }

  /** Freeze a process (its timers and incoming frames wait) for `ms` of simulated time. */
  pause(id: number, ms: number): void {
    const proc = this.nodes.get(id)!.proc!;
    proc.owner.pausedUntilUs = Math.max(proc.owner.pausedUntilUs, this.sched.nowUs + ms * 1000);
    this.#note(`pause ${proc.trace.key} for ${ms} ms`);
  }

  /** The current process (GroupMember) of node `id`, if it runs. */
  member(id: number): GroupMember | null {
    return this.nodes.get(id)?.proc?.member ?? null;
  }

  /** The store of node `id`'s current process. */
  store(id: number): SimStore | null {
    return this.nodes.get(id)?.proc?.store ?? null;
  }

  /** Start the initial members (scenario tests drive time themselves with drive()). */
  startInitial(): void {
    for (let id = 1; id <= this.params.members; id++) this.startNode(id);
  }

  /** Advance simulated time to untilUs, or until done() holds; returns whether done() held. */
  async drive(untilUs: number, done: () => boolean = () => false): Promise<boolean> {
    let ok = false;
    await this.#drive(untilUs, () => (ok = done()));
    return ok || done();
  }

  /** Send payloads from node `id` to its first active shard (ids recorded as sent). */
  sendFrom(id: number, count: number): number {
    const proc = this.nodes.get(id)?.proc;
    if (!proc) return 0;
    const shard = proc.member.shards.find((s) => s.active);
    if (!shard) return 0;
    let sent = 0;
    for (let i = 0; i < count; i++) {
      const pid = `p${proc.trace.key}.${proc.sendCounter}`;
      if (!shard.send(Buffer.from(pid))) break;
      proc.sendCounter++;
      proc.trace.sent.add(pid);
      sent++;
    }
    return sent;
  }

  crashNode(id: number): void {
    const node = this.nodes.get(id)!;
    const proc = node.proc;
    if (!proc) return;
    this.#note(`crash ${proc.trace.key}`);
    proc.owner.epoch++;
    proc.trace.endUs = this.sched.nowUs;
    node.proc = null;
    void proc.member.close();
  }

  #onView(trace: ProcessTrace, e: ViewEvent): void {
    trace.views.push({
      vid: e.view.vid,
      members: e.view.members.map((m) => m.id),
      shards: e.view.shards.map((s) => s.members),
      myShards: e.myShards,
      atUs: this.sched.nowUs,
    });
    if (this.params.verbose) this.#note(`${trace.key} installs view ${e.view.vid} [${e.view.members.map((m) => m.id).join(',')}]`);
  }

  // ------------------------------------------------------------------ workload

  #scheduleSend(proc: Process): void {
    const gapUs = this.rng.int(2_000, 60_000);
    this.sched.at(this.sched.nowUs + gapUs, () => {
      if (this.#stopped) return;
      if (this.#workload) this.#sendSome(proc, this.rng.int(1, 4));
      this.#scheduleSend(proc);
    }, proc.owner);
  }

  #sendSome(proc: Process, count: number): void {
    const active = proc.member.shards.filter((s) => s.active);
    if (active.length === 0) return;
    const shard = this.rng.pick(active);
    for (let i = 0; i < count; i++) {
      const id = `p${proc.trace.key}.${proc.sendCounter}`;
      if (!shard.send(Buffer.from(id))) return;
      proc.sendCounter++;
      proc.trace.sent.add(id);
    }
  }

  /** Send one probe per active shard from every live process; returns the probe ids per shard name. */
  sendProbes(attempt: number): Map<string, string[]> {
    const probes = new Map<string, string[]>();
    for (const node of this.nodes.values()) {
      const proc = node.proc;
      if (!proc) continue;
      for (const shard of proc.member.shards) {
        if (!shard.active) continue;
        const id = `probe${attempt}-${proc.trace.key}-${shard.name}`;
        if (shard.send(Buffer.from(id))) {
          proc.trace.sent.add(id);
          probes.set(shard.name, [...(probes.get(shard.name) ?? []), id]);
        }
      }
    }
    return probes;
  }

  // ------------------------------------------------------------------ faults

  #alive(): number[] {
    return [...this.nodes.values()].filter((n) => n.proc !== null).map((n) => n.id);
  }

  #scheduleFault(): void {
    const gapUs = this.rng.int(200_000, 1_500_000);
    const at = this.sched.nowUs + gapUs;
    if (at >= this.params.faultUntilUs) return;
    this.sched.at(at, () => {
      this.#injectFault();
      this.#scheduleFault();
    });
  }

  #injectFault(): void {
    const alive = this.#alive();
    const r = this.rng.next();
    const later = (minUs: number, maxUs: number, fn: () => void): void => {
      this.sched.at(Math.min(this.sched.nowUs + this.rng.int(minUs, maxUs), this.params.faultUntilUs), fn);
    };
    if (r < 0.25 && alive.length > 0) {
      const id = this.rng.pick(alive);
      this.crashNode(id);
      later(300_000, 3_000_000, () => this.startNode(id));
    } else if (r < 0.45 && alive.length > 0) {
      const proc = this.nodes.get(this.rng.pick(alive))!.proc!;
      const forUs = this.rng.int(100_000, 2_000_000);
      proc.owner.pausedUntilUs = Math.max(proc.owner.pausedUntilUs, this.sched.nowUs + forUs);
      this.#note(`pause ${proc.trace.key} for ${forUs / 1000} ms`);
    } else if (r < 0.65) {
      const ids = [...this.nodes.keys()];
      const side = new Set(this.rng.shuffle([...ids]).slice(0, this.rng.int(1, Math.max(1, ids.length - 1))));
      const cuts: Array<[number, number]> = [];
      for (const a of ids) for (const b of ids) if (a < b && side.has(a) !== side.has(b)) cuts.push([a, b]);
      for (const [a, b] of cuts) this.net.block(a, b);
      this.#note(`partition {${[...side].join(',')}} | rest`);
      later(300_000, 3_000_000, () => {
        for (const [a, b] of cuts) this.net.unblock(a, b);
        this.#note(`heal partition {${[...side].join(',')}}`);
      });
    } else if (r < 0.8) {
      const ids = [...this.nodes.keys()];
      const a = this.rng.pick(ids);
      const b = this.rng.pick(ids.filter((x) => x !== a));
      this.net.block(a, b);
      this.#note(`drop link ${a}-${b}`);
      later(100_000, 2_000_000, () => {
        this.net.unblock(a, b);
        this.#note(`restore link ${a}-${b}`);
      });
    } else if (r < 0.92) {
      const spare = [...this.nodes.values()].find((n) => !n.started);
      if (spare) this.startNode(spare.id);
      else if (alive.length > 0) {
        const id = this.rng.pick(alive);
        this.crashNode(id);
        this.startNode(id);
      }
    } else {
      this.#note('total crash');
      for (const id of alive) this.crashNode(id);
      later(300_000, 2_000_000, () => {
        for (const id of alive) this.startNode(id);
      });
    }
  }

  /** Stop every fault: heal links, resume paused processes, restart crashed nodes. */
  #quiesce(): void {
    this.net.healAll();
    for (const node of this.nodes.values()) {
      if (node.proc) node.proc.owner.pausedUntilUs = Math.min(node.proc.owner.pausedUntilUs, this.sched.nowUs);
      else if (node.started) this.startNode(node.id);
    }
    this.#note('faults stop');
  }

  // ------------------------------------------------------------------ the run

  /** All live processes active in one view whose members are exactly them, every shard state complete. */
  converged(): boolean {
    const procs = [...this.nodes.values()].filter((n) => n.proc).map((n) => n.proc!);
    if (procs.length === 0) return false;
    const view = procs[0]!.member.view;
    if (!view) return false;
    const ids = procs.map((p) => p.id).sort((a, b) => a - b);
    const members = view.members.map((m) => m.id).sort((a, b) => a - b);
    if (ids.join() !== members.join()) return false;
    for (const p of procs) {
      if (p.member.mode !== 'active' || p.member.view?.vid !== view.vid) return false;
      for (const s of p.member.shards) {
        const inShard = view.shards[s.index]!.members.includes(p.id);
        if (inShard && view.shards[s.index]!.provisioned && !s.active) return false;
      }
    }
    return true;
  }

  async run(): Promise<void> {
    const p = this.params;
    this.sched.at(0, () => {
      for (let id = 1; id <= p.members; id++) this.startNode(id);
    });
    if (p.faults) this.sched.at(1_000_000, () => this.#scheduleFault());
    await this.#drive(p.faultUntilUs);
    if (this.failures.length > 0) return;
    this.#quiesce();
    // Liveness: converge, then every probe is delivered by every member of its shard. A view change
    // meanwhile may drop the probes of a member that left: converge again and send new ones.
    const deadline = p.faultUntilUs + p.livenessBoundUs;
    this.#workload = false;
    for (let attempt = 0; ; attempt++) {
      let converged = false;
      await this.#drive(deadline, () => (converged = this.converged()));
      if (!converged) {
        this.fail(`liveness: no single view with every live member within ${p.livenessBoundUs / 1e6} s after faults stopped (${this.#describe()})`);
        return;
      }
      const vid = this.#anyView();
      const probes = this.sendProbes(attempt);
      this.#note(`probes sent in view ${vid}: ${[...probes].map(([k, v]) => `${k}: ${v.length}`).join(', ')}`);
      let delivered = false;
      let moved = false;
      await this.#drive(deadline, () => {
        delivered = this.#probesDelivered(probes);
        moved = !delivered && this.#anyView() !== vid;
        return delivered || moved;
      });
      if (delivered) break;
      if (!moved) {
        this.fail(`liveness: probes not delivered everywhere by ${deadline / 1e6} s (${this.#describe()})`);
        return;
      }
    }
    // Let persistence settle before the final checks.
    await this.#drive(this.sched.nowUs + 1_000_000);
    this.#stopped = true;
  }

  /** Advance virtual time, draining promise jobs after every event (async completions run at that instant). */
  async #drive(untilUs: number, done: () => boolean = () => false): Promise<void> {
    let stop = false;
    let checks = 0;
    while (!stop && this.sched.nowUs < untilUs) {
      await this.sched.run(Math.min(untilUs, this.sched.nowUs + 10_000), () => {
        if (this.failures.length > 0) return true;
        if (++checks % 64 === 0 && done()) stop = true;
        return stop;
      });
      if (this.failures.length > 0) return;
      if (done()) stop = true;
    }
  }

  #probesDelivered(probes: Map<string, string[]>): boolean {
    for (const node of this.nodes.values()) {
      const proc = node.proc;
      if (!proc) continue;
      for (const s of proc.member.shards) {
        if (!s.active) continue;
        const want = probes.get(s.name) ?? [];
        const log = proc.store.logs.get(s.name) ?? [];
        const have = new Set(log.map((e) => e.id));
        if (!want.every((id) => have.has(id))) return false;
      }
    }
    return true;
  }

  #anyView(): number {
    let vid = -1;
    for (const n of this.nodes.values()) vid = Math.max(vid, n.proc?.member.view?.vid ?? -1);
    return vid;
  }

  #describe(): string {
    return [...this.nodes.values()]
      .map((n) => {
        if (!n.proc) return `${n.id}:${n.started ? 'down' : 'unstarted'}`;
        const m = n.proc.member;
        const waiting = m.shards.filter((s) => m.view?.shards[s.index]!.members.includes(n.id) && !s.active).map((s) => s.index);
        return `${n.proc.trace.key}:${m.mode}@${m.view?.vid ?? '-'}${waiting.length ? `(inactive shards ${waiting.join(',')})` : ''}`;
      })
      .join(' ');
  }
}
