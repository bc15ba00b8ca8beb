import { assert } from '../assert.js';
import { SquallError } from '../api/errors.js';
import type { Delivered, OrderedShard, ShardFrontiers, ShardListener, ShardViewInfo } from './ordered-shard.js';
import { VERSION_NONE } from './version.js';

/**
 * One shard of a replicated group as the store sees it: the OrderedShard contract (ordered-shard.ts)
 * on top of the group core. The object lives as long as the member does; across views it keeps its
 * listener, and tells it when it becomes active or inactive (viewChanged, an extension).
 *
 * Invariants: deliveries, frontiers and writable are forwarded in the order the core produced them;
 * frontiers reported to the listener never move backwards; send() on an inactive shard throws
 * SquallError('unavailable') (the member does not order this shard now).
 */
export interface ShardPort {
  send(shardIndex: number, payload: Uint8Array): boolean;
  reportPersisted(shardIndex: number, version: number): void;
}

export class ReplicatedShard implements OrderedShard {
  readonly name: string;
  readonly index: number;
  #members: readonly number[] = [];
  #view = -1;
  #active = false;
  #awaitingState = false;
  #listener: ShardListener | null = null;
  #frontiers: ShardFrontiers = { deliveredVersion: VERSION_NONE, persistedFrontier: VERSION_NONE, stabilityFrontierUs: 0 };
  readonly #port: ShardPort;

  constructor(name: string, index: number, port: ShardPort) {
    this.name = name;
    this.index = index;
    this.#port = port;
  }

  get members(): readonly number[] {
    return this.#members;
  }

  /** (Extension) The view this member last ordered the shard in, -1 before the first. */
  get view(): number {
    return this.#view;
  }

  /** (Extension) Whether this member orders the shard now. */
  get active(): boolean {
    return this.#active;
  }

  get frontiers(): ShardFrontiers {
    return this.#frontiers;
  }

  setListener(listener: ShardListener): void {
    this.#listener = listener;
  }

  send(payload: Uint8Array): boolean {
    if (!this.#active) {
      throw new SquallError('unavailable', `shard ${this.name} is not ordered by this member now`, { shard: this.name }, 1);
    }
    return this.#port.send(this.index, payload);
  }

  reportPersisted(version: number): void {
    assert(version <= this.#frontiers.deliveredVersion, `${this.name}: persisted ${version} beyond delivered ${this.#frontiers.deliveredVersion}`);
    this.#port.reportPersisted(this.index, version);
  }

  // ------------------------------------------------------------- from the runtime

  /** @internal */
  deliver(batch: readonly Delivered[]): void {
    const last = batch[batch.length - 1];
    if (last && last.version > this.#frontiers.deliveredVersion) {
      this.#frontiers = { ...this.#frontiers, deliveredVersion: last.version };
    }
    this.#listener?.deliver(batch);
  }

  /** @internal */
  setFrontiers(f: ShardFrontiers): void {
    const cur = this.#frontiers;
    const next = {
      deliveredVersion: Math.max(cur.deliveredVersion, f.deliveredVersion),
      persistedFrontier: Math.max(cur.persistedFrontier, f.persistedFrontier),
      stabilityFrontierUs: Math.max(cur.stabilityFrontierUs, f.stabilityFrontierUs),
    };
    if (next.deliveredVersion === cur.deliveredVersion && next.persistedFrontier === cur.persistedFrontier && next.stabilityFrontierUs === cur.stabilityFrontierUs) return;
    this.#frontiers = next;
    this.#listener?.frontiers(next);
  }

  /** @internal */
  writable(): void {
    this.#listener?.writable();
  }

  /** @internal */
  setView(info: ShardViewInfo): void {
    const awaitingState = info.awaitingState ?? false;
    const changed =
      info.view !== this.#view ||
      info.active !== this.#active ||
      awaitingState !== this.#awaitingState ||
      info.members.join() !== this.#members.join();
    this.#view = info.view;
    this.#members = info.members;
    this.#active = info.active;
    this.#awaitingState = awaitingState;
    if (changed) this.#listener?.viewChanged?.(info);
  }

  /** @internal */
  drop(payloads: readonly Uint8Array[]): void {
    if (payloads.length > 0) this.#listener?.dropped?.(payloads);
  }
}
