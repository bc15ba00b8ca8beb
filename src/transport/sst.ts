import { assert } from '../assert.js';
import type { MemberInfo } from './view.js';
import { BLOCK_CONTROL, decodeMsgFrame, encodeMsgFrame, FrameKind } from './wire.js';

/**
 * The control block of the shared state table (SST): one row per member of a view, written only by its
 * owner and pushed whole to every member of the view when it changed (coalesced: at most one push per
 * turn). The hot, per-shard columns (received counts, delivered, persisted, stability) are the numeric
 * shard rows kept by ordered-multicast.ts and pushed only to the shard's members; this block holds the
 * membership columns, which change rarely: heartbeat, suspicions, wedged, the leader's proposal and its
 * commit level, the ragged trims a shard leader computed.
 *
 * Invariants:
 * - a row is written only by its owner; `suspected` only grows within a view; `hb` only grows;
 * - `committed` refers to the row's own `proposal`: 1 = its membership change is committed, 2 = its
 *   ragged trims are committed too; it never decreases within a view;
 * - `shardTrims[k]` is set at most once per view, after the trim was logged (TransportStorage);
 * - rows are replaced whole on receipt (the owner always pushes its complete current row), so a lost
 *   intermediate push never matters: every predicate over the table is monotonic.
 */

/** The ragged trim of one shard: per sender rank, the count of indexes every participant received. */
export interface TrimDecision {
  readonly counts: readonly number[];
  /** Member ids whose received counts were included (each holds every message inside the trim). */
  readonly participants: readonly number[];
}

/** A view change proposed by a leader (or adopted from a previous leader). */
export interface Proposal {
  /** Id and rank of the leader that published this copy (adoption re-labels it). */
  readonly leader: number;
  readonly leaderRank: number;
  readonly removes: readonly number[];
  readonly joins: readonly MemberInfo[];
  /** Per shard index of the view: its trim (null: nothing to deliver); null until the second phase. */
  readonly trims: readonly (TrimDecision | null)[] | null;
}

export interface ControlRow {
  hb: number;
  hbPeriodMs: number;
  suspected: number[];
  wedged: boolean;
  proposal: Proposal | null;
  committed: 0 | 1 | 2;
  shardTrims: (TrimDecision | null)[];
  wantNewView: boolean;
}

export function emptyRow(shardCount: number, hbPeriodMs: number): ControlRow {
  return {
    hb: 0,
    hbPeriodMs,
    suspected: [],
    wedged: false,
    proposal: null,
    committed: 0,
    shardTrims: new Array<TrimDecision | null>(shardCount).fill(null),
    wantNewView: false,
  };
}

/** Identity of a proposal's membership change (independent of which leader published it). */
export function membershipKey(p: Proposal): string {
  return JSON.stringify([[...p.removes].sort((a, b) => a - b), p.joins.map((j) => [j.id, j.host, j.port, j.incarnation])]);
}

/** Identity of a proposal including its trims. */
export function fullKey(p: Proposal): string {
  return `${membershipKey(p)}|${JSON.stringify(p.trims)}`;
}

/** The control rows of one view, as seen by one member. */
export class ControlTable {
  readonly vid: number;
  readonly rows: ControlRow[];
  readonly myRank: number;
  #dirty = true;
  #changed = true;

  constructor(vid: number, memberCount: number, myRank: number, shardCount: number, hbPeriodMs: number) {
    assert(myRank >= 0 && myRank < memberCount, `rank ${myRank} outside view of ${memberCount}`);
    this.vid = vid;
    this.myRank = myRank;
    this.rows = Array.from({ length: memberCount }, () => emptyRow(shardCount, hbPeriodMs));
  }

  get mine(): ControlRow {
    return this.rows[this.myRank]!;
  }

  /** Mark my row changed: it is pushed at the end of the turn. */
  touch(): void {
    this.#dirty = true;
    this.#changed = true;
  }

  /** Whether any row changed since the last call (predicates need re-evaluating). */
  takeChanged(): boolean {
    const c = this.#changed;
    this.#changed = false;
    return c;
  }

  /** The frame for my row if it changed since the last call. */
  takePush(): Uint8Array | null {
    if (!this.#dirty) return null;
    this.#dirty = false;
    return encodeMsgFrame(FrameKind.controlRow, BLOCK_CONTROL, this.vid, this.mine);
  }

  /** A control row frame from the member at `rank`; returns an error message if it is malformed. */
  apply(rank: number, frame: Uint8Array): string | null {
    if (rank === this.myRank) return 'control row for my own rank';
    const row = decodeMsgFrame(frame) as ControlRow;
    if (typeof row !== 'object' || row === null || !Array.isArray(row.suspected) || typeof row.hb !== 'number') {
      return 'malformed control row';
    }
    const old = this.rows[rank]!;
    if (row.hb < old.hb) return null; // older than what we have (cannot happen on a FIFO link)
    this.rows[rank] = row;
    this.#changed = true;
    return null;
  }
}
