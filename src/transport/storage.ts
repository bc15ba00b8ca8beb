import type { TrimDecision } from './sst.js';
import type { View } from './view.js';

/**
 * What the view-change protocol needs from durable storage (implemented by the persist layer on LMDB;
 * MemoryTransportStorage below is the in-memory version used by the simulation and by tests).
 *
 * - saveView(view): called before a view is used; resolves once durable. The last saved view is where a
 *   total restart starts from.
 * - logRaggedTrim(record): called before a ragged trim is used (published by a shard leader, echoed by
 *   a follower, delivered up to); resolves once durable. A trim record also names the view that follows,
 *   so a member that crashed between logging it and saving that view still knows the view exists.
 * - loadRestartState(): at start-up, the last saved view, the logged trims since, and the end of each
 *   shard log this node holds (the persist layer knows these from its shard logs).
 *
 * Calls are issued one at a time per member, in order; the protocol waits for each before relying on it.
 */

export interface RaggedTrimRecord {
  /** The view being ended. */
  readonly vid: number;
  readonly shardIndex: number;
  readonly shardName: string;
  readonly trim: TrimDecision;
  /** The view that follows (its membership is committed when the trim is computed). */
  readonly nextView: View;
}

/** The last entry of one shard log on this node. */
export interface ShardLogEnd {
  readonly version: number;
  readonly timestampUs: number;
  /**
   * false while this node's copy of the shard is incomplete: it entered the shard and its state transfer
   * was not durably installed yet (the persist layer must clear it in the same commit that starts such a
   * member's shard, and set it when the transferred state is durable). Default true. A total restart only
   * counts a shard as present if a member of it holds a complete copy.
   */
  readonly complete?: boolean;
  /** With complete = false: the members this node was waiting for (where the complete history is). */
  readonly awaitingFrom?: readonly number[];
}

export interface RestartState {
  readonly savedView: View | null;
  readonly trims: readonly RaggedTrimRecord[];
  /** Shard name → the last persisted entry of this node's log of that shard. */
  readonly logEnds: Readonly<Record<string, ShardLogEnd>>;
}

export interface TransportStorage {
  saveView(view: View): Promise<void>;
  logRaggedTrim(record: RaggedTrimRecord): Promise<void>;
  /** null when this node has never saved a view (a fresh node). */
  loadRestartState(): Promise<RestartState | null>;
}

/**
 * One in-memory store of views and trims that outlives a simulated crash (the simulation keeps the
 * object and hands it to the restarted member). Log ends come from a function supplied by whoever holds
 * the shard logs (the simulated store).
 */
export class MemoryTransportStorage implements TransportStorage {
  savedView: View | null = null;
  trims: RaggedTrimRecord[] = [];
  /** Bound on remembered trims (older ones are useless once a later view is saved). */
  static readonly TRIMS_KEPT_MAX = 4096;

  constructor(private readonly logEnds: () => Record<string, ShardLogEnd> = () => ({})) {}

  async saveView(view: View): Promise<void> {
    this.savedView = structuredClone(view);
    this.trims = this.trims.filter((t) => t.vid >= view.vid);
  }

  async logRaggedTrim(record: RaggedTrimRecord): Promise<void> {
    this.trims.push(structuredClone(record));
    if (this.trims.length > MemoryTransportStorage.TRIMS_KEPT_MAX) this.trims.shift();
  }

  async loadRestartState(): Promise<RestartState | null> {
    if (this.savedView === null) return null;
    return { savedView: structuredClone(this.savedView), trims: structuredClone(this.trims), logEnds: this.logEnds() };
  }
}

/** What a donor hands a member that needs a shard's state. */
export interface StateTransfer {
  /** "tail": the log entries after fromVersion up to toVersion; "state": the whole state as of toVersion. */
  readonly kind: 'tail' | 'state';
  readonly bytes: Uint8Array;
  readonly fromVersion: number;
  readonly toVersion: number;
}

/**
 * The state-transfer hook the layer above (the store) supplies. The transport decides who sends what to
 * whom and when; the store produces and installs the bytes.
 */
export interface StateTransferHooks {
  /**
   * Donor side: the log entries of shard `name` after `afterVersion` up to `toVersion`, or null when this
   * node cannot produce a tail that continues `afterVersion` (trimmed, or afterVersion is not a version of
   * its log): the transport then asks for stateAt instead.
   */
  logTail(name: string, afterVersion: number, toVersion: number): Promise<Uint8Array | null>;
  /** Donor side: the whole state of shard `name` as of `version` (everything at or below it). */
  stateAt(name: string, version: number): Promise<Uint8Array>;
  /** Receiving side: install what a donor produced; resolves once applied (not necessarily persisted). */
  install(name: string, transfer: StateTransfer): Promise<void>;
}
