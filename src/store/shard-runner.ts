import { SquallError } from '../api/errors.js';
import { assert, fail } from '../assert.js';
import type { Logger } from '../log.js';
import { Deque } from '../transport/deque.js';
import type { NodeStorage } from '../persist/node-storage.js';
import type { Delivered, OrderedShard, ShardFrontiers, ShardListener, ShardViewInfo } from '../transport/ordered-shard.js';
import { ConditionWaiters, VersionWaiters } from './frontier-waiters.js';
import { decodeOp, encodeOp, type Op } from './ops.js';

/**
 * The part every shard-backed state machine shares (object shards, the pool metadata shard):
 * - submit(): encodes an op, hands it to the shard's ordered stream (with a bounded backlog when the stream
 *   pushes back, and 503 overloaded beyond `pendingOpsMax` ops not yet durable), and answers the caller when
 *   the op is applied here;
 * - deliver(): applies each delivered op in order (subclass), then takes one durability point for the whole
 *   batch (group commit: the batch's LMDB writes share a transaction) and reports `persisted` to the stream
 *   in delivery order once it is reached;
 * - waiting for a version to be delivered or persisted, or a time to become stable.
 *
 * Invariants: ops are applied in delivery order exactly once; persisted is reported in increasing version
 * order and never beyond what is durable; the count of unfinished ops never goes negative.
 */
export interface Applied<R> {
  result: R;
  version: number;
  timestampUs: number;
}

export interface ShardRunnerOptions {
  channel: OrderedShard;
  storage: NodeStorage;
  nodeId: number;
  /** 'durable': persisted = synced to disk (persistent data); 'committed': visible in LMDB (volatile data). */
  durability: 'durable' | 'committed';
  pendingOpsMax: number;
  waitersMax: number;
  logger: Logger;
  /** Everything up to this version is durable here already (the copy's end marker at start). */
  durableVersionStart?: number;
}

interface BatchRecord {
  lastVersion: number;
  done: boolean;
  ops: number;
}

type PendingCall<R> = { resolve(a: Applied<R>): void; reject(e: Error): void };

export abstract class ShardRunner<R> {
  readonly channel: OrderedShard;
  readonly storage: NodeStorage;
  readonly nodeId: number;
  readonly logger: Logger;
  readonly #deliveredWaiters: VersionWaiters;
  readonly #persistedWaiters: VersionWaiters;
  readonly #stableWaiters: ConditionWaiters;
  readonly #durableWaiters: VersionWaiters;
  /** Highest version of a batch made durable here (locally; persistedFrontier is the shard-wide minimum). */
  #durableVersion: number;
  readonly #durability: 'durable' | 'committed';
  readonly #pendingOpsMax: number;
  #nextOpId = 1;
  readonly #calls = new Map<number, PendingCall<R>>();
  #backlog: Array<{ payload: Uint8Array }> = [];
  /** Ops submitted here or delivered here and not yet durable. */
  #unfinished = 0;
  readonly #batches: BatchRecord[] = [];
  /** When recent batches became durable here: [last version, performance.now() ms], oldest first (bounded). */
  readonly #durableTimes = new Deque<[number, number]>(DURABLE_TIMES_KEPT);
  /** Set when the shard failed: the 503 every later call gets (it names the cause). */
  #failed: SquallError | null = null;
  #closed = false;

  constructor(options: ShardRunnerOptions) {
    this.channel = options.channel;
    this.storage = options.storage;
    this.nodeId = options.nodeId;
    this.logger = options.logger;
    this.#durability = options.durability;
    this.#pendingOpsMax = options.pendingOpsMax;
    this.#deliveredWaiters = new VersionWaiters(() => this.channel.frontiers.deliveredVersion, options.waitersMax);
    this.#persistedWaiters = new VersionWaiters(() => this.channel.frontiers.persistedFrontier, options.waitersMax);
    this.#stableWaiters = new ConditionWaiters(options.waitersMax);
    this.#durableVersion = options.durableVersionStart ?? -1;
    // with no batch pending, everything delivered is durable here (null messages carry nothing to store)
    this.#durableWaiters = new VersionWaiters(
      () => (this.#batches.length === 0 ? Math.max(this.#durableVersion, this.channel.frontiers.deliveredVersion) : this.#durableVersion),
      options.waitersMax,
    );
    const listener: ShardListener = {
      deliver: (batch) => this.#deliver(batch),
      frontiers: () => {
        this.#deliveredWaiters.notify();
        this.#persistedWaiters.notify();
        this.#durableWaiters.notify();
        if (this.#stableWaiters.size > 0) this.#stableWaiters.notify();
        this.onFrontiers();
      },
      writable: () => this.#writable(),
      viewChanged: (info) => this.onViewChanged(info),
      dropped: (payloads) => this.#dropped(payloads),
    };
    this.channel.setListener(listener);
  }

  get name(): string {
    return this.channel.name;
  }

  get frontiers(): ShardFrontiers {
    return this.channel.frontiers;
  }

  /** The error every call gets once the shard failed (503 `shard … failed: <cause>`), or null. */
  get failed(): SquallError | null {
    return this.#failed;
  }

  /** Ops accepted and not yet durable (for metrics and admission). */
  get unfinishedOps(): number {
    return this.#unfinished;
  }

  /** Submits an op built with this node's origin; resolves with its result once applied here. */
  submit(build: (origin: { o: number; i: number }) => Op): Promise<Applied<R>> {
    if (this.#failed) return Promise.reject(this.#failed);
    if (this.#closed) return Promise.reject(new SquallError('unavailable', `shard ${this.name} is shutting down`, {}, 1));
    if (this.#unfinished >= this.#pendingOpsMax) {
      return Promise.reject(
        new SquallError('overloaded', `shard ${this.name} has ${this.#unfinished} writes in flight (limit ${this.#pendingOpsMax}); retry shortly`, {}, 1),
      );
    }
    if (!this.serving) return Promise.reject(notServing(this.name));
    const i = this.#nextOpId++;
    const payload = encodeOp(build({ o: this.nodeId, i }));
    return new Promise<Applied<R>>((resolve, reject) => {
      if (this.#backlog.length === 0) {
        let sent: boolean;
        try {
          sent = this.channel.send(payload);
        } catch (e) {
          reject(e);
          return;
        }
        if (!sent) this.#backlog.push({ payload });
      } else this.#backlog.push({ payload });
      this.#calls.set(i, { resolve, reject });
      this.#unfinished++;
    });
  }

  // ---- what the ordered stream calls (through the listener) ----

  #deliver(batch: readonly Delivered[]): void {
    if (this.#failed) return;
    let applied = 0;
    try {
      for (const d of batch) {
        const op = decodeOp(d.payload);
        const result = this.applyOp(d, op);
        applied++;
        if (op.o === this.nodeId) {
          const call = this.#calls.get(op.i);
          if (call) {
            this.#calls.delete(op.i);
            call.resolve({ result, version: d.version, timestampUs: d.timestampUs });
          }
        } else {
          this.#unfinished++; // counted until durable like our own
        }
      }
    } catch (e) {
      this.#fail(e as Error);
      return;
    }
    assert(applied === batch.length, 'every delivered op applied');
    const last = batch[batch.length - 1];
    if (!last) return;
    const record: BatchRecord = { lastVersion: last.version, done: false, ops: batch.length };
    this.#batches.push(record);
    const point = this.#durability === 'durable' ? this.storage.durable() : this.storage.committed();
    this.afterBatch(record.lastVersion, last.timestampUs);
    point.then(
      () => {
        record.done = true;
        this.#drainDurable();
      },
      (e: unknown) => this.#fail(e as Error),
    );
  }

  /**
   * Payloads this member sent that will never be delivered (it stopped ordering the shard before they
   * were): their callers get 503 view_change and retry elsewhere with the same request id.
   */
  #dropped(payloads: readonly Uint8Array[]): void {
    for (const payload of payloads) {
      const op = decodeOp(payload);
      if (op.o !== this.nodeId) continue;
      const call = this.#calls.get(op.i);
      if (!call) continue;
      this.#calls.delete(op.i);
      this.#unfinished--;
      call.reject(new SquallError('view_change', `shard ${this.name} changed membership before the write was ordered; retry (it was not applied)`, { shard: this.name }, 1));
    }
    this.#backlog = this.#backlog.filter((b) => !payloads.includes(b.payload));
  }

  /** Whether this member orders the shard now (always, for a one-member shard). */
  get serving(): boolean {
    const c = this.channel as { active?: boolean };
    return this.#failed === null && (c.active ?? true);
  }

  #writable(): void {
    while (this.#backlog.length > 0) {
      let sent: boolean;
      try {
        sent = this.channel.send(this.#backlog[0]!.payload);
      } catch {
        // no longer ordered here: what waits in the backlog was never sent
        this.#dropped(this.#backlog.map((b) => b.payload));
        return;
      }
      if (!sent) return;
      this.#backlog.shift();
    }
  }

  // ---- waits ----

  waitDelivered(version: number, timeoutMs: number): Promise<void> {
    return this.#deliveredWaiters.wait(version, timeoutMs, () => notYetStable(this.name, `version ${version} is not delivered yet`, { version }));
  }

  waitPersisted(version: number, timeoutMs: number): Promise<void> {
    return this.#persistedWaiters.wait(version, timeoutMs, () => notYetStable(this.name, `version ${version} is not persisted yet`, { version }));
  }

  /** Resolves once this member's own copy is durable up to `version` (a state-transfer donor waits for it). */
  waitLocallyDurable(version: number, timeoutMs: number): Promise<void> {
    return this.#durableWaiters.wait(version, timeoutMs, () => notYetStable(this.name, `version ${version} is not durable here yet`, { version }));
  }

  /**
   * When `version` became durable here (performance.now() ms), if it did recently; null when it is not
   * durable yet or too long ago (metrics).
   */
  durableAt(version: number): number | null {
    const t = this.#durableTimes;
    let lo = 0;
    let hi = t.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (t.at(mid)[0] < version) lo = mid + 1;
      else hi = mid;
    }
    return lo < t.length && (lo > 0 || t.at(0)[0] === version) ? t.at(lo)[1] : null;
  }

  /** After a state transfer installed a copy up to `version`. */
  protected installedUpTo(version: number): void {
    if (version > this.#durableVersion) this.#durableVersion = version;
    this.#durableWaiters.notify();
  }

  /** Resolves once every message with timestamp ≤ t is delivered and persisted on every member. */
  waitStable(timestampUs: number, timeoutMs: number): Promise<void> {
    const pollMs = 1;
    return this.#stableWaiters.wait(
      () => this.channel.frontiers.stabilityFrontierUs > timestampUs,
      timeoutMs,
      () => notYetStable(this.name, `time ${timestampUs} is not below the stability frontier yet`, { stability_frontier_us: this.channel.frontiers.stabilityFrontierUs }),
      pollMs,
    );
  }

  close(): void {
    this.#closed = true;
    const e = new SquallError('unavailable', `shard ${this.name} is shutting down`, {}, 1);
    this.#rejectWaiters(e);
    for (const call of this.#calls.values()) call.reject(e);
    this.#calls.clear();
  }

  // ---- for subclasses ----

  /** Applies one delivered op (deterministic); queues its LMDB writes. Throws only on a bug or I/O failure. */
  protected abstract applyOp(d: Delivered, op: Op): R;

  /** Called after a batch's writes are queued, before they are durable. */
  protected afterBatch(_lastVersion: number, _lastTimestampUs: number): void {}

  /** Called when the batch up to `lastVersion` is durable (before persisted is reported). */
  protected onDurable(_lastVersion: number): void {}

  protected onFrontiers(): void {}

  /** The shard's membership changed (replicated shards). */
  protected onViewChanged(_info: ShardViewInfo): void {}

  #drainDurable(): void {
    while (this.#batches.length > 0 && this.#batches[0]!.done) {
      const b = this.#batches.shift()!;
      this.#unfinished -= b.ops;
      if (!(this.#unfinished >= 0)) fail(`unfinished ops negative on ${this.name}`);
      this.onDurable(b.lastVersion);
      this.#durableVersion = b.lastVersion;
      if (this.#durableTimes.length >= DURABLE_TIMES_KEPT) this.#durableTimes.shift();
      this.#durableTimes.push([b.lastVersion, performance.now()]);
      this.#durableWaiters.notify();
      this.channel.reportPersisted(b.lastVersion);
    }
  }

  #fail(e: Error): void {
    if (this.#failed) return;
    const err = new SquallError('unavailable', `shard ${this.name} failed: ${e.message}`, {}, 5);
    this.#failed = err;
    this.logger.error({ err: e, shard: this.name }, 'shard failed: no further operations are applied');
    for (const call of this.#calls.values()) call.reject(err);
    this.#calls.clear();
    this.#rejectWaiters(err);
  }

  #rejectWaiters(e: Error): void {
    this.#deliveredWaiters.rejectAll(e);
    this.#persistedWaiters.rejectAll(e);
    this.#stableWaiters.rejectAll(e);
    this.#durableWaiters.rejectAll(e);
  }
}

/** Batches whose durable time durableAt() remembers. */
const DURABLE_TIMES_KEPT = 4096;

/** The answer of a member asked to do something on a shard it does not order now. */
export function notServing(shard: string): SquallError {
  return new SquallError('unavailable', `this member does not order shard ${shard} now`, { shard, not_serving: true }, 1);
}

function notYetStable(shard: string, what: string, details: Record<string, unknown>): SquallError {
  return new SquallError('not_yet_stable', `${what} on shard ${shard}; retry later or raise wait_ms`, details);
}
