import { pack, unpack } from 'msgpackr';
import type { GroupMember } from '../../../src/transport/member.js';
import type { Delivered, ShardFrontiers, ShardViewInfo } from '../../../src/transport/ordered-shard.js';
import type { ReplicatedShard } from '../../../src/transport/replicated-shard.js';
import { MemoryTransportStorage, type ShardLogEnd, type StateTransfer, type StateTransferHooks } from '../../../src/transport/storage.js';
import type { Rng } from './random.js';
import type { Owner, Scheduler } from './scheduler.js';

/**
 * The simulated layer above the transport (a minimal store): per shard an ordered log of delivered
 * payloads, persisted after a random delay into the node's durable part (which survives crashes), with
 * the state-transfer hooks. It checks what a store may rely on: versions strictly increase and
 * timestamps never decrease along each shard's log.
 */

export interface Entry {
  readonly v: number;
  readonly ts: number;
  readonly sender: number;
  readonly id: string;
}

/** What survives a crash of a node: persisted log prefixes, completeness flags, views and trims. */
export class SimDurable {
  readonly logs = new Map<string, Entry[]>();
  readonly incomplete = new Set<string>();
  readonly awaitingFrom = new Map<string, readonly number[]>();
  readonly transport = new MemoryTransportStorage(() => this.logEnds());

  logEnds(): Record<string, ShardLogEnd> {
    const out: Record<string, ShardLogEnd> = {};
    for (const [name, log] of this.logs) {
      const last = log[log.length - 1];
      if (last) out[name] = { version: last.v, timestampUs: last.ts, complete: !this.incomplete.has(name) };
    }
    for (const name of this.incomplete) {
      out[name] = { ...(out[name] ?? { version: -1, timestampUs: 0 }), complete: false, awaitingFrom: this.awaitingFrom.get(name) ?? [] };
    }
    return out;
  }
}

export interface StoreEvents {
  violation(message: string): void;
  persistedFrontier(shard: string, version: number): void;
}

export class SimStore implements StateTransferHooks {
  readonly logs = new Map<string, Entry[]>();
  readonly #shards = new Map<string, ReplicatedShard>();

  constructor(
    readonly durable: SimDurable,
    readonly sched: Scheduler,
    readonly rng: Rng,
    readonly owner: Owner,
    readonly events: StoreEvents,
  ) {
    for (const [name, log] of durable.logs) this.logs.set(name, [...log]);
  }

  #log(name: string): Entry[] {
    let log = this.logs.get(name);
    if (!log) {
      log = [];
      this.logs.set(name, log);
    }
    return log;
  }

  attach(member: GroupMember): void {
    for (const shard of member.shards) {
      this.#shards.set(shard.name, shard);
      shard.setListener({
        deliver: (batch) => this.#apply(shard, batch),
        frontiers: (f: ShardFrontiers) => this.events.persistedFrontier(shard.name, f.persistedFrontier),
        writable: () => {},
        viewChanged: (info: ShardViewInfo) => {
          // The durable completeness flag changes in the same step the shard starts waiting for its state.
          if (info.awaitingState) {
            this.durable.incomplete.add(shard.name);
            this.durable.awaitingFrom.set(shard.name, info.awaitingFrom ?? []);
          }
          else if (info.active) this.durable.incomplete.delete(shard.name);
        },
      });
    }
  }

  #apply(shard: ReplicatedShard, batch: readonly Delivered[]): void {
    const log = this.#log(shard.name);
    for (const d of batch) {
      const last = log[log.length - 1];
      if (last && d.version <= last.v) this.events.violation(`${shard.name}: delivered version ${d.version} after ${last.v}`);
      if (last && d.timestampUs < last.ts) this.events.violation(`${shard.name}: timestamp ${d.timestampUs} after ${last.ts}`);
      log.push({ v: d.version, ts: d.timestampUs, sender: d.sender, id: Buffer.from(d.payload).toString() });
    }
    const upTo = batch[batch.length - 1]!.version;
    this.#persistLater(shard, upTo);
  }

  #persistLater(shard: ReplicatedShard, upTo: number): void {
    const delayUs = this.rng.chance(0.05) ? this.rng.int(20_000, 200_000) : this.rng.int(0, 20_000);
    this.sched.at(this.sched.nowUs + delayUs, () => {
      const log = this.#log(shard.name);
      this.durable.logs.set(shard.name, log.filter((e) => e.v <= upTo));
      if (upTo <= shard.frontiers.deliveredVersion) shard.reportPersisted(upTo);
    }, this.owner);
  }

  // ------------------------------------------------------------- state transfer hooks

  async logTail(name: string, afterVersion: number, toVersion: number): Promise<Uint8Array | null> {
    const log = this.#log(name);
    if (afterVersion >= 0 && !log.some((e) => e.v === afterVersion)) return null;
    return pack(log.filter((e) => e.v > afterVersion && e.v <= toVersion));
  }

  async stateAt(name: string, version: number): Promise<Uint8Array> {
    return pack(this.#log(name).filter((e) => e.v <= version));
  }

  async install(name: string, transfer: StateTransfer): Promise<void> {
    const entries = unpack(transfer.bytes) as Entry[];
    const log = this.#log(name);
    if (transfer.kind === 'state') {
      log.splice(0, log.length, ...entries);
    } else {
      const last = log[log.length - 1]?.v ?? -1;
      if (last !== transfer.fromVersion) throw new Error(`tail from ${transfer.fromVersion} does not continue log ending at ${last}`);
      log.push(...entries);
    }
    // Durable at once in the simulation (the real store commits the install before resolving).
    this.durable.logs.set(name, [...log]);
    this.durable.incomplete.delete(name);
    const last = log[log.length - 1];
    const shard = this.#shards.get(name);
    if (last && shard) {
      // Reported on a later event: the transport releases the shard once this promise resolves.
      this.sched.at(this.sched.nowUs, () => {
        if (last.v <= shard.frontiers.deliveredVersion) shard.reportPersisted(last.v);
      }, this.owner);
    }
  }
}
