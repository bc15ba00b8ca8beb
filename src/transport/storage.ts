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

/**
 * One chunk of what a donor hands a member that needs a shard's state. A transfer is a sequence of
 * chunks: the receiver installs each (durably) before asking for the next, so a shard of any size moves
 * in bounded pieces.
 */
export interface StateTransfer {
  /** "tail": the log entries after fromVersion up to toVersion; "state": the whole state as of toVersion. */
  readonly kind: 'tail' | 'state';
  readonly bytes: Uint8Array;
  readonly fromVersion: number;
  readonly toVersion: number;
  /** The transfer's first chunk (a "state" transfer empties the copy before installing it). */
  readonly first: boolean;
  /** The transfer's last chunk: once it is installed, the copy is whole up to toVersion. */
  readonly last: boolean;
}

/** A chunk as a donor produces it, and where the next one starts (opaque to the transport; null: none). */
export interface StateChunk {
  readonly bytes: Uint8Array;
  readonly next: Uint8Array | null;
}

/**
 * The state-transfer hook the layer above (the store) supplies. The transport decides who sends what to
 * whom and when; the store produces and installs the bytes. `cursor` is null for a transfer's first
 * chunk and otherwise the `next` of the chunk before; a chunk holds about `chunkBytes` of records (at
 * least one record).
 */
export interface StateTransferHooks {
  /**
   * Donor side: a chunk of the log entries of shard `name` after `afterVersion` up to `toVersion`, or null
   * when this node cannot produce a tail that continues `afterVersion` (trimmed, or afterVersion is not a
   * version of its log): the transport then asks for stateAt instead.
   */
  logTail(name: string, afterVersion: number, toVersion: number, cursor: Uint8Array | null, chunkBytes: number): Promise<StateChunk | null>;
  /** Donor side: a chunk of the whole state of shard `name` as of `version` (everything at or below it). */
  stateAt(name: string, version: number, cursor: Uint8Array | null, chunkBytes: number): Promise<StateChunk>;
  /** Receiving side: install one chunk; resolves once it is durable here. */
  install(name: string, transfer: StateTransfer): Promise<void>;
}

/**
 * For in-memory logs (the simulation, the transport test member): the entries of a chunk of `log`
 * (ascending `v`) after `after` up to `to`, starting past `cursor`, holding about `chunkBytes` by
 * `bytesOf` (at least one entry), and the cursor of the next chunk (null: this is the last).
 */
export function memoryLogChunk<E extends { readonly v: number }>(
  log: readonly E[],
  after: number,
  to: number,
  cursor: Uint8Array | null,
  chunkBytes: number,
  bytesOf: (e: E) => number,
): { entries: E[]; next: Uint8Array | null } {
  const start = cursor === null ? after : Buffer.from(cursor).readDoubleLE(0);
  const entries: E[] = [];
  let bytes = 0;
  let i = log.findIndex((e) => e.v > start);
  if (i < 0) i = log.length;
  for (; i < log.length && log[i]!.v <= to && (entries.length === 0 || bytes < chunkBytes); i++) {
    entries.push(log[i]!);
    bytes += bytesOf(log[i]!);
  }
  const more = i < log.length && log[i]!.v <= to;
  if (!more) return { entries, next: null };
  const next = Buffer.alloc(8);
  next.writeDoubleLE(entries[entries.length - 1]!.v, 0);
  return { entries, next };
}
