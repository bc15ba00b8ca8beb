import { assert } from '../assert.js';
import { SquallError } from '../api/errors.js';
import type { Logger } from '../log.js';
import type { GroupConfig } from './config.js';
import type { MemberAddress } from './driver.js';
import { FailureDetector } from './failure-detector.js';
import { HybridClock } from './hlc.js';
import { computeLayout, shardNames } from './layout.js';
import type { ChunkRequest, ControlMessage, RestartSummary } from './messages.js';
import {
  discardHeld,
  freshCarry,
  holdCarry,
  ShardMulticast,
  ShardRow,
  type MulticastOutput,
  type MulticastTrace,
  type ShardCarry,
} from './ordered-multicast.js';
import { decodeReply, decodeRequest, encodeReply, encodeRequest, P2PStatus, PeerRequests } from './p2p.js';
import { ControlTable, fullKey, membershipKey, type ControlRow, type Proposal, type TrimDecision } from './sst.js';
import type { RaggedTrimRecord, RestartState, ShardLogEnd, StateTransfer } from './storage.js';
import { initialView, nextView, rankOf, type MemberInfo, type View } from './view.js';
import { VERSION_NONE } from './version.js';
import { decodeMsgFrame, encodeMsgFrame, FrameKind, frameShard, frameView, HEADER_BYTES } from './wire.js';

/**
 * The group core: one member's whole protocol (views, control table, ordered multicast per shard,
 * failure detection, view change with ragged trims, joins with state transfer, total restart, P2P) as a
 * pure state machine. Inputs: start, onFrame, onLinkUp/onLinkDown, onTick(nowUs), flush(nowUs), send,
 * reportPersisted, request/reply, and the completions of what it asked for (storageDone, stateProduced,
 * stateInstalled). Outputs: calls on CoreOutput. No I/O, no clock, no timers.
 *
 * View change (Derecho's, through counters in the control table):
 *  1. suspicion: a member silent for too long (failure-detector.ts), whose link broke, or that restarted
 *     is suspected; suspicions spread through the table (a member adopts the suspicions of every row it
 *     does not itself suspect, in rank order; a member suspected by such a row leaves the view);
 *  2. wedge: a member with any suspicion, or that sees a proposal, stops its multicasts (its received
 *     counts are final and pushed before its wedged flag);
 *  3. the lowest-ranked unsuspected member leads, once every unsuspected row suspects every lower rank;
 *     it first adopts any earlier proposal found in any row (a committed one, else the one published by
 *     the highest-ranked leader) and otherwise proposes {removes: its suspicions, joins: pending joins};
 *  4. followers copy the leader's proposal (an ack); the leader commits (committed = 1) once every
 *     unsuspected row acked; a commit seen in any row is adopted;
 *  5. each shard's leader (lowest unsuspected shard member), once every unsuspected shard member is
 *     wedged, computes the ragged trim (per sender, the minimum received count over them), logs it
 *     (TransportStorage.logRaggedTrim) and only then publishes it in its row;
 *  6. the group leader puts the published trims into its proposal (second phase); followers log the
 *     trims of their shards and echo; the leader commits them (committed = 2) once every unsuspected row
 *     echoed;
 *  7. every member delivers exactly up to the trims of its shards (or leaves, if it lacks a message the
 *     trim includes), waits until every unsuspected shard member persisted the last delivered payload,
 *     saves the next view and installs it; its undelivered own payloads are re-sent with new versions.
 *
 * Invariants (asserted where checkable):
 * - at most one membership change and one set of trims is committed per view (a successor leader
 *   adopts what a predecessor may have committed; with the majority rule, any two leaders' unsuspected
 *   sets intersect);
 * - every payload delivered in a view by any member is inside the committed trim (delivery needs every
 *   member's receipt, and received counts freeze at wedge);
 * - the survivors of a view deliver the same payloads in it, in the same order;
 * - a trim is logged before it is published, echoed or delivered up to; a view is saved before it is used;
 * - a member in a minority (majority rule on) stops; a member suspected by others leaves cleanly.
 */

export type StartMode = 'form' | 'join';

export type StorageRequest = { readonly kind: 'saveView'; readonly view: View } | { readonly kind: 'logTrim'; readonly record: RaggedTrimRecord };

export interface ProduceStateRequest {
  readonly name: string;
  readonly shardIndex: number;
  readonly fromVersion: number;
  readonly toVersion: number;
  /** Null: the transfer's first chunk (the donor picks tail or state); else the chunk after `cursor`. */
  readonly continuation: { readonly kind: 'tail' | 'state'; readonly cursor: Uint8Array } | null;
  /** About how many bytes of records one chunk holds (config stateChunkBytes). */
  readonly chunkBytes: number;
}

export interface ProducedState {
  readonly kind: 'tail' | 'state';
  readonly bytes: Uint8Array;
  /** Where the next chunk starts; null: this was the last. */
  readonly next: Uint8Array | null;
}

export type P2PResult = { readonly ok: true; readonly payload: Uint8Array } | { readonly ok: false; readonly error: SquallError };

export interface ViewEvent {
  readonly view: View;
  /** Shard indexes this member orders in this view (provisioned shards it is a member of). */
  readonly myShards: readonly number[];
}

export interface CoreOutput extends MulticastOutput {
  /** The members the driver should keep links with. */
  setPeers(peers: readonly MemberAddress[]): void;
  viewInstalled(event: ViewEvent): void;
  /** A shard that waited for its state (transfer installed, or none needed after all) is complete now. */
  shardReady(shardIndex: number): void;
  /** This member no longer orders shard `shardIndex`; its own payloads that will never be delivered. */
  shardLeft(shardIndex: number, undelivered: readonly Uint8Array[]): void;
  /** Answer with storageDone(token). Requests come one at a time. */
  storage(token: number, request: StorageRequest): void;
  /** Answer with stateProduced(token, ...). */
  produceState(token: number, request: ProduceStateRequest): void;
  /** Answer with stateInstalled(token, ok). */
  installState(token: number, name: string, shardIndex: number, transfer: StateTransfer): void;
  /** Answer with reply(from, id, ...). */
  p2pRequest(from: number, id: number, payload: Uint8Array): void;
  p2pResult(id: number, result: P2PResult): void;
  /** The member is out of the group: removed/left ("left") or in a minority ("minority"). */
  stopped(kind: 'left' | 'minority', reason: string): void;
}

export interface GroupCoreOptions {
  readonly config: GroupConfig;
  readonly self: MemberAddress;
  /** Identifies this process; a restarted member has a new one. */
  readonly incarnation: number;
  /** What storage held at start-up (null: a fresh node). */
  readonly restart: RestartState | null;
  readonly out: CoreOutput;
  readonly log: Logger;
  /** Optional protocol trace (simulation checker). */
  readonly trace?: MulticastTrace | undefined;
}

interface WantedState {
  /** Members to ask, round-robin (grows when an incomplete member redirects us to its own donors). */
  donors: number[];
  next: number;
  req: number;
  sentUs: number;
  installing: boolean;
  /** Members that refused because they wait too: their copy's end and whom they wait for. */
  readonly refusals: Map<number, { readonly logEnd: number; readonly awaiting: readonly number[] }>;
  /** The member whose incomplete copy was found to be the latest (asked with anyway). */
  anyway: number | null;
  /** A state must reach at least this payload version (total restart: the longest copy reported). */
  readonly minVersion: number;
  /**
   * The transfer under way from `donor` once its first chunk arrived: the chunk asked for next. It is asked
   * for as soon as the previous chunk arrives, so the donor produces and sends it while that one installs.
   */
  transfer: TransferProgress | null;
  /** That next chunk, arrived while the previous one still installs (at most one chunk waits). */
  prefetched: { readonly from: number; readonly msg: StateReply } | null;
  /** When the transfer's progress was last logged (µs; 0: not yet). */
  progressLoggedUs: number;
  /** The joiner queue reached joinerQueueBytesMax during this wait (logged once). */
  holdFullLogged?: boolean;
}

/** What the first chunk of a transfer said (every later chunk is asked for and installed with it). */
interface TransferProgress {
  readonly donor: number;
  readonly kind: 'tail' | 'state';
  readonly from: number;
  readonly to: number;
  readonly lastPayload: number;
  readonly lastTimestampUs: number;
  readonly chunk: number;
  readonly cursor: Uint8Array;
  /** Bytes of the chunks received so far. */
  readonly bytes: number;
}

/** How often a long state transfer logs its progress (µs). */
const STATE_PROGRESS_LOG_US = 2_000_000;

interface ActiveView {
  readonly view: View;
  readonly myRank: number;
  readonly table: ControlTable;
  readonly shards: Map<number, ShardMulticast>;
  /** Shards this member is in but which are not provisioned in this view. */
  readonly parked: Map<number, ShardCarry>;
  readonly suspected: Set<number>;
  wedged: boolean;
  /** fullKey of the proposal whose trims this member logged. */
  loggedKey: string | null;
  logging: boolean;
  readonly shardTrimLogging: Set<number>;
  /**
   * A view this member formed at a fresh start (view 0 from the configuration): the members not heard from
   * in it yet. It is announced (viewInstalled: this member serves) only once every member was heard in it, so
   * a member whose data directory was emptied does not serve an empty state in a view the others left long
   * ago; it finds out (nobody answers in view 0), stops and joins. null: announced.
   */
  unheard: Set<number> | null;
  joinersSent: string | null;
  /** This member asked to leave (it suspects itself in its row). */
  leaving: boolean;
  trimDelivered: boolean;
  installing: boolean;
  readonly wanted: Map<number, WantedState>;
}

interface PendingJoin {
  readonly info: MemberInfo;
  readonly sinceUs: number;
  /** Last time the joiner (or a member forwarding for it) asked; stale joiners are not admitted. */
  seenUs: number;
}

interface RestartInfo {
  readonly member: MemberInfo;
  readonly summary: RestartSummary;
  readonly seenUs: number;
}

type Mode = 'idle' | 'joining' | 'installing' | 'active' | 'left' | 'stopped';

type StateReply = Extract<ControlMessage, { t: 'state'; ok: true }>;

const US_PER_MS = 1000;
/** Views (saved, or named by logged trims) a member remembers for a total restart. */
const VIEWS_REMEMBERED_MAX = 8;
/** Join requests a leader keeps pending (more are refused until some are admitted or expire). */
const PENDING_JOINS_MAX = 1024;
/** State requests a member keeps until it reaches the requester's view. */
const DEFERRED_STATE_REQUESTS_MAX = 1024;
/** A transfer in progress is logged every this many chunks. */
const STATE_PROGRESS_CHUNKS = 64;
/** How many generations of incomplete copies a total restart follows back. */
const RESTART_CHAIN_MAX = 16;
/** Most donors a waiting member keeps asking (redirects add to them). */
const DONORS_MAX = 64;

function unique(ids: readonly number[]): number[] {
  return [...new Set(ids)];
}

export class GroupCore {
  readonly selfId: number;
  readonly #config: GroupConfig;
  readonly #self: MemberAddress;
  readonly #out: CoreOutput;
  #log: Logger;
  readonly #baseLog: Logger;
  readonly #trace: MulticastTrace | undefined;
  readonly #processIncarnation: number;
  #incarnation: number;
  #rejoins = 0;
  #mode: Mode = 'idle';
  /** start('form') until its view is activated (see ActiveView.unheard). */
  #forming = false;
  #nowUs = 0;
  readonly #hlc = new HybridClock();
  #active: ActiveView | null = null;
  readonly #detector: FailureDetector;
  readonly #p2p: PeerRequests;
  readonly #known = new Map<number, MemberAddress>();
  readonly #linkIncarnation = new Map<number, number>();

  /** Views this member saved or learnt from logged trims (for a total restart). */
  #views: View[] = [];
  /** Shard name → end of this member's log (updated when it leaves a shard). */
  readonly #logEnds = new Map<string, ShardLogEnd>();
  /** Shards whose copy here is incomplete (waiting for, or interrupted in, a state transfer). */
  readonly #incomplete = new Set<string>();
  /** For incomplete shards: the members this member waits for (where the complete history is). */
  readonly #awaitingFrom = new Map<string, readonly number[]>();
  readonly #shardNames: readonly string[];

  #future: Array<{ from: number; frame: Uint8Array }> = [];
  #futureBytes = 0;

  #nextToken = 1;
  readonly #storageQueue: Array<{ request: StorageRequest; then: () => void }> = [];
  #storageBusy: { token: number; then: () => void } | null = null;
  readonly #produceJobs = new Map<
    number,
    { to: number; shard: number; req: number; from: number; toVersion: number; lastPayload: number; lastTimestampUs: number; chunk: number }
  >();
  readonly #installJobs = new Map<
    number,
    {
      shard: number;
      req: number;
      donor: number;
      kind: 'tail' | 'state';
      from: number;
      toVersion: number;
      lastPayload: number;
      lastTimestampUs: number;
      chunk: number;
      next: Uint8Array | null;
      /** Bytes of the transfer with this chunk. */
      bytes: number;
    }
  >();
  /**
   * Shards whose local copy is void until a transfer completes: emptied by a partly installed "state"
   * transfer, or reaching beyond the history a total restart agreed on. This member counts itself as
   * holding nothing of them (it asks for a whole state and reports no log end).
   */
  readonly #emptied = new Set<string>();
  #deferredStateReqs: Array<{ from: number; msg: Extract<ControlMessage, { t: 'stateReq' }> }> = [];
  #nextStateReq = 1;

  #lastHeartbeatUs = 0;
  #lastJoinSentUs = -Infinity;
  #liveSeenUs = -Infinity;
  readonly #restartInfos = new Map<number, RestartInfo>();
  #quorumSinceUs: number | null = null;
  #lastRestartNoteUs = -Infinity;
  readonly #pendingJoins = new Map<number, PendingJoin>();

  constructor(o: GroupCoreOptions) {
    this.#config = o.config;
    this.#self = o.self;
    this.selfId = o.self.id;
    this.#out = o.out;
    this.#log = o.log;
    this.#baseLog = o.log;
    this.#trace = o.trace;
    this.#processIncarnation = o.incarnation;
    this.#incarnation = o.incarnation;
    this.#detector = new FailureDetector(o.config.heartbeatPeriodMs, o.config.suspectAfterMissedHeartbeats);
    this.#p2p = new PeerRequests(o.config.p2pOutstandingMax);
    this.#shardNames = shardNames(o.config.layout.subgroups);
    for (const m of o.config.members) this.#known.set(m.id, m);
    if (o.restart) {
      if (o.restart.savedView) this.#views.push(o.restart.savedView);
      for (const t of o.restart.trims) this.#views.push(t.nextView);
      for (const [name, end] of Object.entries(o.restart.logEnds)) {
        if (end.version >= 0) this.#logEnds.set(name, end);
        if (end.complete === false) {
          this.#incomplete.add(name);
          this.#awaitingFrom.set(name, end.awaitingFrom ?? []);
        }
      }
      for (const v of this.#views) for (const m of v.members) this.#known.set(m.id, m);
      let ts = 0;
      for (const end of this.#logEnds.values()) ts = Math.max(ts, end.timestampUs);
      this.#hlc.observe(ts);
    }
  }

  // =============================================================== queries

  get mode(): Mode {
    return this.#mode;
  }

  get view(): View | null {
    return this.#active?.view ?? null;
  }

  get incarnation(): number {
    return this.#incarnation;
  }

  /** Whether shard `k` is ordered by this member now (and its state is complete). */
  shardReady(k: number): boolean {
    const mc = this.#active?.shards.get(k);
    return mc !== undefined && !mc.awaitingState;
  }

  /** A snapshot of the protocol state for diagnostics (tests, logs). */
  describe(): Record<string, unknown> {
    const a = this.#active;
    return {
      mode: this.#mode,
      view: a?.view.vid ?? null,
      suspected: a ? [...a.suspected] : [],
      wedged: a?.wedged ?? null,
      control: a?.table.rows.map((r) => ({ hb: r.hb, suspected: r.suspected, wedged: r.wedged, committed: r.committed, proposal: r.proposal !== null })),
      shards: a ? [...a.shards.values()].map((mc) => mc.describe()) : [],
      wanted: a ? [...a.wanted].map(([k, w]) => ({ shard: k, donors: w.donors, installing: w.installing })) : [],
      future: this.#future.length,
    };
  }

  frontiersOf(k: number): ShardMulticast['frontiers'] | null {
    return this.#active?.shards.get(k)?.frontiers ?? null;
  }

  // =============================================================== inputs: lifecycle

  start(mode: StartMode, nowUs: number): void {
    assert(this.#mode === 'idle', `start in mode ${this.#mode}`);
    this.#nowUs = nowUs;
    if (mode === 'form') {
      assert(this.#config.members.some((m) => m.id === this.selfId), `member ${this.selfId} is not an initial member`);
      const view = initialView(this.#config.layout.subgroups, this.#config.members);
      this.#mode = 'installing';
      this.#forming = true;
      this.#saveView(view, () => this.#activate(view, view.shards.map(() => []), null));
    } else {
      this.#beginJoining();
    }
  }

  /** Leave the group on purpose: other members remove this one in the next view. */
  leave(): void {
    const a = this.#active;
    if (!a || this.#mode !== 'active') return;
    a.leaving = true;
    a.table.mine.suspected = [...a.suspected, this.selfId];
    a.table.touch();
    this.#wedge(a);
  }

  /** Join again after having left or stopped (a new incarnation, so the old one is removed first). */
  rejoin(): void {
    assert(this.#mode === 'left' || this.#mode === 'stopped', `rejoin in mode ${this.#mode}`);
    this.#rejoins++;
    this.#incarnation = this.#processIncarnation + this.#rejoins * 2 ** 32;
    this.#beginJoining();
  }

  // =============================================================== inputs: network

  onLinkUp(peer: number, incarnation: number): void {
    const prev = this.#linkIncarnation.get(peer);
    this.#linkIncarnation.set(peer, incarnation);
    const a = this.#active;
    if (a && this.#mode === 'active' && prev !== undefined && prev !== incarnation && rankOf(a.view, peer) >= 0) {
      this.#suspect(a, peer, 'restarted (new incarnation)');
    }
  }

  onLinkDown(peer: number): void {
    const a = this.#active;
    if (a && this.#mode === 'active' && rankOf(a.view, peer) >= 0 && !a.suspected.has(peer)) {
      this.#suspect(a, peer, 'link down');
    }
    this.#failRequests((to) => to === peer, `member ${peer} is unreachable`);
  }

  onFrame(from: number, frame: Uint8Array): void {
    if (frame.length < HEADER_BYTES) return this.#log.warn({ from }, 'short frame dropped');
    const kind = frame[0]!;
    // Any frame from a member of this view counts as a heartbeat, but only if it was sent from this view
    // or an older one: a member that moved on to a view this one never reaches is as good as gone here.
    const a = this.#active;
    if (a && frameView(frame) <= a.view.vid && rankOf(a.view, from) >= 0) this.#detector.heard(from);
    switch (kind) {
      case FrameKind.data:
      case FrameKind.row:
      case FrameKind.controlRow:
        return this.#onViewFrame(from, frame, kind);
      case FrameKind.msg: {
        let msg: ControlMessage;
        try {
          msg = decodeMsgFrame(frame) as ControlMessage;
        } catch (e) {
          return this.#log.warn({ from, err: String(e) }, 'malformed control message dropped');
        }
        return this.#onMessage(from, msg);
      }
      case FrameKind.p2pRequest:
        return this.#onP2PRequest(from, frame);
      case FrameKind.p2pReply:
        return this.#onP2PReply(frame);
      default:
        this.#log.warn({ from, kind }, 'frame of unknown kind dropped');
    }
  }

  #onViewFrame(from: number, frame: Uint8Array, kind: number): void {
    const vid = frameView(frame);
    const a = this.#active;
    if (!a || this.#mode !== 'active' || vid > a.view.vid) {
      if (this.#mode === 'active' || this.#mode === 'joining' || this.#mode === 'installing') this.#bufferFuture(from, frame);
      return;
    }
    if (vid < a.view.vid) return;
    const rank = rankOf(a.view, from);
    if (rank < 0 || rank === a.myRank || a.suspected.has(from)) return;
    // announced before this frame is handled: nothing is delivered in a view before every member was heard
    if (a.unheard?.delete(from) && a.unheard.size === 0) {
      a.unheard = null;
      this.#announce(a);
    }
    if (kind === FrameKind.controlRow) {
      const err = a.table.apply(rank, frame);
      if (err) return this.#protocolError(a, from, err);
      this.#detector.setPeriod(from, a.table.rows[rank]!.hbPeriodMs);
      return;
    }
    const mc = a.shards.get(frameShard(frame));
    if (!mc) return;
    const shardRank = mc.members.indexOf(from);
    if (shardRank < 0) return this.#protocolError(a, from, `not a member of shard ${mc.name}`);
    const err = kind === FrameKind.data ? mc.onData(frame) : mc.onRow(shardRank, frame);
    if (err) this.#protocolError(a, from, `${mc.name}: ${err}`);
  }

  /** Tells the layers above that this member is in `a` (it serves its shards). */
  #announce(a: ActiveView): void {
    this.#log.info(
      { members: a.view.members.map((m) => m.id), shards: [...a.shards.keys()], awaitingState: [...a.wanted.keys()] },
      'view installed',
    );
    this.#out.viewInstalled({ view: a.view, myShards: [...a.shards.keys()] });
  }

  #bufferFuture(from: number, frame: Uint8Array): void {
    if (this.#futureBytes + frame.length > this.#config.futureFrameBytesMax) {
      this.#log.warn({ from, bytes: this.#futureBytes }, 'frames for a future view exceed futureFrameBytesMax; dropping the oldest');
      while (this.#future.length > 0 && this.#futureBytes + frame.length > this.#config.futureFrameBytesMax) {
        this.#futureBytes -= this.#future.shift()!.frame.length;
      }
    }
    this.#future.push({ from, frame });
    this.#futureBytes += frame.length;
  }

  #protocolError(a: ActiveView, from: number, err: string): void {
    this.#log.error({ from, vid: a.view.vid, err }, 'protocol violation: suspecting the sender');
    this.#suspect(a, from, `protocol violation: ${err}`);
  }

  // =============================================================== inputs: turns

  onTick(nowUs: number): void {
    this.#nowUs = nowUs;
    if (this.#mode === 'joining') this.#joinTick();
    const a = this.#active;
    if (a && this.#mode === 'active') {
      const periodUs = this.#config.heartbeatPeriodMs * US_PER_MS;
      if (nowUs - this.#lastHeartbeatUs >= periodUs) {
        this.#lastHeartbeatUs = nowUs;
        a.table.mine.hb++;
        a.table.touch();
        for (const mc of a.shards.values()) mc.tick(nowUs);
      }
      for (const peer of this.#detector.tick(nowUs)) {
        if (!a.suspected.has(peer)) this.#suspect(a, peer, `silent for ${this.#detector.timeoutUs(peer) / US_PER_MS} ms`);
      }
      if (!a.table.mine.wantNewView && [...a.shards.values()].some((mc) => mc.wantsRollover)) {
        a.table.mine.wantNewView = true;
        a.table.touch();
      }
      this.#stateTick(a);
    }
    for (const id of this.#p2p.expired(nowUs)) {
      this.#out.p2pResult(id, { ok: false, error: new SquallError('unavailable', 'P2P request timed out') });
    }
  }

  /** End of a turn: evaluate the protocol's predicates, send batches, push changed rows. */
  flush(nowUs: number): void {
    this.#nowUs = nowUs;
    const a = this.#active;
    if (!a || this.#mode !== 'active') return;
    if (a.table.takeChanged() || a.wedged) this.#evaluate(a);
    if (this.#active !== a) return; // a view was installed (and flushed) meanwhile
    this.#flushView(a);
  }

  #flushView(a: ActiveView): void {
    for (const mc of a.shards.values()) mc.flush(this.#nowUs);
    const push = a.table.takePush();
    if (push) {
      const to = a.view.members.filter((m) => m.id !== this.selfId).map((m) => m.id);
      if (to.length > 0) this.#out.push(to, [push]);
    }
  }

  // =============================================================== inputs: app

  /** Queue a payload for shard k's total order; false when the window is full. */
  send(k: number, payload: Uint8Array): boolean {
    const mc = this.#active?.shards.get(k);
    if (!mc || this.#mode !== 'active') {
      throw new SquallError('unavailable', `member ${this.selfId} does not order shard ${k} now`, { shard: k });
    }
    return mc.enqueue(payload);
  }

  reportPersisted(k: number, version: number): void {
    const mc = this.#active?.shards.get(k);
    if (mc) mc.persisted(version);
  }

  /** Start a P2P request; the result arrives through p2pResult(id, ...). */
  request(to: number, payload: Uint8Array, timeoutMs: number): number {
    const a = this.#active;
    if (payload.length > this.#config.p2pPayloadBytesMax) {
      throw new SquallError('too_large', `P2P payload of ${payload.length} bytes exceeds p2pPayloadBytesMax ${this.#config.p2pPayloadBytesMax}`);
    }
    if (this.#p2p.size >= this.#config.p2pOutstandingMax) {
      throw new SquallError('overloaded', `${this.#p2p.size} P2P requests outstanding (p2pOutstandingMax)`, {}, 1);
    }
    if (!a || this.#mode !== 'active' || rankOf(a.view, to) < 0 || a.suspected.has(to)) {
      throw new SquallError('view_change', `member ${to} is not in the current view`, { member: to });
    }
    const id = this.#p2p.open(to, this.#nowUs + timeoutMs * US_PER_MS);
    this.#out.push([to], encodeRequest(a.view.vid, id, payload));
    return id;
  }

  reply(to: number, id: number, result: { ok: true; payload: Uint8Array } | { ok: false; message: string }): void {
    const vid = this.#active?.view.vid ?? 0;
    if (result.ok && result.payload.length > this.#config.p2pPayloadBytesMax) {
      result = { ok: false, message: `reply of ${result.payload.length} bytes exceeds p2pPayloadBytesMax` };
    }
    const payload = result.ok ? result.payload : new TextEncoder().encode(result.message);
    this.#out.push([to], encodeReply(vid, id, result.ok ? P2PStatus.ok : P2PStatus.error, payload));
  }

  #onP2PRequest(from: number, frame: Uint8Array): void {
    const { id, payload } = decodeRequest(frame);
    this.#out.p2pRequest(from, id, payload);
  }

  #onP2PReply(frame: Uint8Array): void {
    const { id, status, payload } = decodeReply(frame);
    if (!this.#p2p.close(id)) return;
    if (status === P2PStatus.ok) this.#out.p2pResult(id, { ok: true, payload });
    else this.#out.p2pResult(id, { ok: false, error: new SquallError('internal', new TextDecoder().decode(payload)) });
  }

  #failRequests(lost: (to: number) => boolean, message: string): void {
    for (const { id, to } of this.#p2p.closeWhere(lost)) {
      this.#out.p2pResult(id, { ok: false, error: new SquallError('view_change', message, { member: to }) });
    }
  }

  // =============================================================== inputs: completions

  storageDone(token: number): void {
    const busy = this.#storageBusy;
    assert(busy !== null && busy.token === token, `storage completion ${token} not awaited`);
    this.#storageBusy = null;
    busy.then();
    this.#pumpStorage();
  }

  stateProduced(token: number, result: ProducedState | { error: string }): void {
    const job = this.#produceJobs.get(token);
    if (!job) return;
    this.#produceJobs.delete(token);
    const msg: ControlMessage =
      'error' in result
        ? { t: 'state', shard: job.shard, req: job.req, ok: false, reason: result.error }
        : {
            t: 'state',
            shard: job.shard,
            req: job.req,
            ok: true,
            kind: result.kind,
            bytes: result.bytes,
            from: job.from,
            to: job.toVersion,
            lastPayload: job.lastPayload,
            lastTimestampUs: job.lastTimestampUs,
            chunk: job.chunk,
            next: result.next,
          };
    this.#sendMsg(job.to, msg);
  }

  stateInstalled(token: number, ok: boolean, error?: string): void {
    const job = this.#installJobs.get(token);
    if (!job) return;
    this.#installJobs.delete(token);
    const name = this.#shardNames[job.shard]!;
    if (ok && job.kind === 'state' && job.chunk === 0) {
      // the store emptied its copy to install this state (even if a view change made the transfer moot
      // meanwhile): it holds nothing else of the shard now
      this.#emptied.add(name);
      this.#logEnds.delete(name);
    }
    const a = this.#active;
    const want = a?.wanted.get(job.shard);
    if (!a || !want || want.req !== job.req) return;
    want.installing = false;
    if (!ok) {
      this.#log.warn({ shard: job.shard, error }, 'state install failed; asking the next donor');
      this.#askNextDonor(a, job.shard, want);
      return;
    }
    if (job.next !== null) {
      const mc = a.shards.get(job.shard);
      if (job.chunk % STATE_PROGRESS_CHUNKS === STATE_PROGRESS_CHUNKS - 1) {
        this.#log.info(
          { shard: job.shard, donor: job.donor, kind: job.kind, toVersion: job.toVersion, chunks: job.chunk + 1, bytes: job.bytes, heldBytes: mc?.heldBytes },
          'state transfer in progress',
        );
      }
      if (mc?.holdFull && !want.holdFullLogged) {
        want.holdFullLogged = true;
        this.#log.warn(
          { shard: job.shard, heldBytes: mc.heldBytes, joinerQueueBytesMax: this.#config.joinerQueueBytesMax },
          'joiner queue full: this shard pauses new deliveries until the state transfer completes',
        );
      }
      // the next chunk was asked for when this one arrived: install it if it is here, else wait for it
      const waiting = want.prefetched;
      want.prefetched = null;
      if (waiting) this.#installChunk(a, job.shard, want, waiting.from, waiting.msg);
      else want.sentUs = this.#nowUs;
      return;
    }
    a.wanted.delete(job.shard);
    this.#emptied.delete(name);
    const mc = a.shards.get(job.shard);
    if (mc?.awaitingState) {
      mc.releaseHeld(job.toVersion, job.lastPayload, job.lastTimestampUs);
      // install() resolves once a chunk is durable: this copy is persisted up to toVersion now. Reported
      // here, not left to the next delivered batch: on a quiet shard that never comes, and a view change
      // waits for every member's persisted row to reach the shard's last payload (seen as a wedged cluster).
      mc.persisted(job.toVersion);
    }
    this.#incomplete.delete(name);
    this.#awaitingFrom.delete(name);
    this.#out.shardReady(job.shard);
    this.#hlc.observe(job.lastTimestampUs);
    this.#log.info(
      { shard: name, vid: a.view.vid, toVersion: job.toVersion, kind: job.kind, chunks: job.chunk + 1, bytes: job.bytes },
      'state transfer complete',
    );
  }

  // =============================================================== storage queue

  #storage(request: StorageRequest, then: () => void): void {
    this.#storageQueue.push({ request, then });
    this.#pumpStorage();
  }

  #pumpStorage(): void {
    if (this.#storageBusy || this.#storageQueue.length === 0) return;
    const { request, then } = this.#storageQueue.shift()!;
    const token = this.#nextToken++;
    this.#storageBusy = { token, then };
    if (request.kind === 'saveView') this.#rememberView(request.view);
    else this.#rememberView(request.record.nextView);
    this.#out.storage(token, request);
  }

  #saveView(view: View, then: () => void): void {
    this.#storage({ kind: 'saveView', view }, then);
  }

  #rememberView(view: View): void {
    if (!this.#views.some((v) => v.vid === view.vid)) this.#views.push(view);
    this.#views.sort((x, y) => x.vid - y.vid);
    if (this.#views.length > VIEWS_REMEMBERED_MAX) this.#views.splice(0, this.#views.length - VIEWS_REMEMBERED_MAX);
  }

  // =============================================================== messages

  #sendMsg(to: number, msg: ControlMessage): void {
    this.#out.push([to], [encodeMsgFrame(FrameKind.msg, 0, this.#active?.view.vid ?? 0, msg)]);
  }

  #learn(m: MemberAddress): void {
    const known = this.#known.get(m.id);
    if (known && known.host === m.host && known.port === m.port) return;
    this.#known.set(m.id, { id: m.id, host: m.host, port: m.port });
    this.#updatePeers();
  }

  #updatePeers(): void {
    this.#out.setPeers([...this.#known.values()].filter((m) => m.id !== this.selfId));
  }

  #onMessage(from: number, msg: ControlMessage): void {
    switch (msg.t) {
      case 'join':
        return this.#onJoin(from, msg);
      case 'live':
        if (this.#mode === 'joining') this.#liveSeenUs = this.#nowUs;
        return;
      case 'view':
        return this.#onViewInstall(msg.view, msg.donors, null);
      case 'restartView':
        return this.#onViewInstall(msg.view, msg.donors, msg.donorEnds);
      case 'stateReq':
        return this.#onStateRequest(from, msg);
      case 'state':
        return this.#onStateReply(from, msg);
    }
  }

  // =============================================================== joining and restart

  #beginJoining(): void {
    this.#mode = 'joining';
    this.#active = null;
    this.#lastJoinSentUs = -Infinity;
    this.#liveSeenUs = -Infinity;
    this.#restartInfos.clear();
    this.#quorumSinceUs = null;
    this.#future = [];
    this.#futureBytes = 0;
    this.#log = this.#baseLog.child({ incarnation: this.#incarnation });
    this.#updatePeers();
  }

  #me(): MemberInfo {
    return { id: this.selfId, host: this.#self.host, port: this.#self.port, incarnation: this.#incarnation };
  }

  #summary(): RestartSummary | null {
    if (this.#views.length === 0) return null;
    // Only the newest view this member knows matters to a restart (the leader takes the newest of all).
    const newest = this.#views.reduce((x, y) => (y.vid > x.vid ? y : x));
    const logEnds: Record<string, ShardLogEnd> = {};
    for (const [name, end] of this.#logEnds) logEnds[name] = { ...end, complete: !this.#incomplete.has(name) };
    for (const name of this.#incomplete) {
      const end = (!this.#emptied.has(name) && logEnds[name]) || { version: VERSION_NONE, timestampUs: 0 };
      logEnds[name] = { ...end, complete: false, awaitingFrom: this.#awaitingFrom.get(name) ?? [] };
    }
    return { views: [newest], logEnds };
  }

  #joinTick(): void {
    if (this.#nowUs - this.#lastJoinSentUs >= this.#config.joinRetryMs * US_PER_MS) {
      this.#lastJoinSentUs = this.#nowUs;
      const msg: ControlMessage = { t: 'join', member: this.#me(), restart: this.#summary() };
      for (const id of this.#known.keys()) if (id !== this.selfId) this.#sendMsg(id, msg);
    }
    if (this.selfId === this.#config.restartLeaderId) this.#tryRestart();
  }

  #onJoin(from: number, msg: Extract<ControlMessage, { t: 'join' }>): void {
    const info = msg.member;
    const forwarded = info.id !== from;
    if (forwarded && !(this.#active && rankOf(this.#active.view, from) >= 0)) {
      return this.#log.warn({ from, claimed: info.id }, 'join for another member from a non-member dropped');
    }
    this.#learn(info);
    if (this.#mode === 'joining') {
      if (forwarded) return;
      if (msg.restart) this.#restartInfos.set(from, { member: info, summary: msg.restart, seenUs: this.#nowUs });
      else this.#restartInfos.set(from, { member: info, summary: { views: [], logEnds: {} }, seenUs: this.#nowUs });
      return;
    }
    const a = this.#active;
    if (!a || this.#mode !== 'active') return;
    const joiner = info.id;
    if (!forwarded) this.#sendMsg(joiner, { t: 'live', vid: a.view.vid });
    const inView = a.view.members.find((m) => m.id === joiner);
    if (inView) {
      if (inView.incarnation !== 0 && inView.incarnation === info.incarnation) {
        this.#sendMsg(joiner, { t: 'view', view: a.view, donors: a.view.holders });
      } else if (!a.suspected.has(joiner)) {
        this.#suspect(a, joiner, 'joined again (restarted)');
      }
      return;
    }
    const mine = a.table.mine;
    if (mine.committed >= 1 && mine.proposal?.joins.some((j) => j.id === joiner && j.incarnation === info.incarnation)) {
      const next = this.#nextOf(a, mine.proposal);
      this.#sendMsg(joiner, { t: 'view', view: next.view, donors: next.donors });
      return;
    }
    const leaderRank = this.#leaderRank(a);
    if (leaderRank === a.myRank) {
      const pending = this.#pendingJoins.get(joiner);
      if (!pending && this.#pendingJoins.size >= PENDING_JOINS_MAX) {
        this.#log.warn({ joiner, pending: this.#pendingJoins.size }, 'too many pending joins (PENDING_JOINS_MAX); the joiner will retry');
      } else if (!pending || pending.info.incarnation !== info.incarnation) {
        this.#pendingJoins.set(joiner, { info, sinceUs: this.#nowUs, seenUs: this.#nowUs });
        a.table.touch(); // re-evaluate
      } else {
        pending.seenUs = this.#nowUs;
      }
    } else if (leaderRank >= 0 && !forwarded) {
      // Forward to the leader (it may not know the joiner's address yet: the message carries it).
      this.#out.push([a.view.members[leaderRank]!.id], [encodeMsgFrame(FrameKind.msg, 0, a.view.vid, msg)]);
    }
  }

  #onViewInstall(view: View, donors: readonly (readonly number[])[], donorEnds: readonly number[] | null): void {
    if (this.#mode !== 'joining') return;
    const me = view.members.find((m) => m.id === this.selfId);
    if (!me) return;
    if (donorEnds === null && me.incarnation !== this.#incarnation) return; // for an older incarnation of me
    // A view not newer than one this member saved is a stale message (e.g. a restart view that waited on a
    // cut link while this member went on to later views, or a second restart view with the id of one it
    // already installed): installing it would deliver that history again.
    const newest = this.#views[this.#views.length - 1];
    if (newest !== undefined && view.vid <= newest.vid) {
      this.#log.warn({ vid: view.vid, newestSaved: newest.vid }, 'stale view message ignored');
      return;
    }
    this.#mode = 'installing';
    this.#active = null;
    this.#saveView(view, () => this.#activate(view, donors, donorEnds));
  }

  #tryRestart(): void {
    if (this.#nowUs - this.#liveSeenUs < 4 * this.#config.joinRetryMs * US_PER_MS) {
      if (this.#nowUs - this.#lastRestartNoteUs > 1_000_000) {
        this.#lastRestartNoteUs = this.#nowUs;
        this.#log.info('total restart: not attempted, a live group answered recently');
      }
      return;
    }
    const staleUs = 4 * this.#config.joinRetryMs * US_PER_MS;
    const infos: RestartInfo[] = [];
    const mine = this.#summary();
    infos.push({ member: this.#me(), summary: mine ?? { views: [], logEnds: {} }, seenUs: this.#nowUs });
    for (const [id, info] of this.#restartInfos) {
      if (this.#nowUs - info.seenUs > staleUs) this.#restartInfos.delete(id);
      else infos.push(info);
    }
    const views = infos.flatMap((i) => i.summary.views);
    if (views.length === 0) return;
    const newest = views.reduce((x, y) => (y.vid > x.vid ? y : x));
    const present = new Set(infos.map((i) => i.member.id));
    const need = this.#config.majorityRule ? Math.floor(newest.members.length / 2) + 1 : 1;
    const count = newest.members.filter((m) => present.has(m.id)).length;
    const sources = newest.shards.map((s) => this.#restartSources(newest, s.index, s.name, infos));
    const shardsCovered = sources.every((src) => src !== null);
    if (count < need || !shardsCovered) {
      if (this.#quorumSinceUs !== null || this.#nowUs - this.#lastRestartNoteUs > 1_000_000) {
        this.#lastRestartNoteUs = this.#nowUs;
        this.#log.info({ newest: newest.vid, present: [...present], count, need, shardsCovered }, 'total restart: waiting for a quorum');
      }
      this.#quorumSinceUs = null;
      return;
    }
    this.#quorumSinceUs ??= this.#nowUs;
    const all = newest.members.every((m) => present.has(m.id));
    // A member of the newest view whose summary names an older one wrote it before it installed the newest,
    // and may run it (or a later view) by now: e.g. a restart view this member sent before it stopped. A
    // live member answers the next join with 'live' (no restart then); give it that round trip first, or the
    // restart view could take a view id that the live group uses too.
    const lagging = infos.some((i) => i.member.id !== this.selfId && rankOf(newest, i.member.id) >= 0 && (i.summary.views[0]?.vid ?? -1) < newest.vid);
    const waitMs = Math.max(all ? 0 : this.#config.restartGraceMs, lagging ? 2 * this.#config.joinRetryMs : 0);
    if (this.#nowUs - this.#quorumSinceUs < waitMs * US_PER_MS) return;

    const byId = new Map(infos.map((i) => [i.member.id, i]));
    const order = [
      ...newest.members.filter((m) => present.has(m.id)).map((m) => m.id),
      ...[...present].filter((id) => !newest.members.some((m) => m.id === id)).sort((x, y) => x - y),
    ];
    const members = order.map((id) => byId.get(id)!.member);
    const vid = Math.max(...views.map((v) => v.vid)) + 1;
    const shards = computeLayout(this.#config.layout.subgroups, order, newest.shards);
    const donors: number[][] = [];
    const donorEnds: number[] = [];
    for (const s of shards) {
      // The members holding the shard's latest history, longest copy first. Members with a shorter copy
      // fetch the rest, and accept only a state reaching the longest end (a donor that crashed since it
      // reported may come back with less).
      const withEnds = sources[s.index]!
        .map((id) => ({ id, version: byId.get(id)!.summary.logEnds[s.name]?.version ?? VERSION_NONE }))
        .filter((d) => d.version >= 0)
        .sort((x, y) => y.version - x.version || x.id - y.id);
      donors.push(withEnds.map((d) => d.id));
      donorEnds.push(withEnds[0]?.version ?? VERSION_NONE);
    }
    const view: View = { vid, members, shards, holders: donors };
    this.#log.warn({ vid, members: order, newestSaved: newest.vid, donors }, 'total restart: installing the restart view');
    const msg: ControlMessage = { t: 'restartView', view, donors, donorEnds };
    for (const id of order) if (id !== this.selfId) this.#sendMsg(id, msg);
    this.#onViewInstall(view, donors, donorEnds);
  }

  /**
   * The present members holding a complete copy of the latest history of shard k as of view `newest`,
   * or null while that cannot be established. A member holds a shard if, in its own newest view, it was
   * a member of it and its copy is complete (a member only assigned to the shard in a view it never
   * installed holds nothing). Start with the shard's members and holders in `newest`; if every one of
   * them is present and none holds the shard, follow whom they waited for (incomplete copies) or the
   * holders they knew (non-holders): the previous generation, and so on. An absent candidate might hold
   * newer history: then wait.
   */
  #restartSources(newest: View, k: number, name: string, infos: readonly RestartInfo[]): number[] | null {
    const infoOf = (id: number): RestartInfo | undefined => infos.find((i) => i.member.id === id);
    const holds = (id: number): boolean => {
      const info = infoOf(id);
      const own = info?.summary.views[0];
      return info !== undefined && own !== undefined && own.shards[k]!.members.includes(id) && info.summary.logEnds[name]?.complete !== false;
    };
    let generation = unique([...newest.shards[k]!.members, ...(newest.holders[k] ?? [])]);
    const seen = new Set<number>();
    for (let depth = 0; depth < RESTART_CHAIN_MAX && generation.length > 0; depth++) {
      const valid = generation.filter(holds);
      if (valid.length > 0) return valid;
      if (!generation.every((id) => infoOf(id) !== undefined)) return null;
      for (const id of generation) seen.add(id);
      const next: number[] = [];
      for (const id of generation) {
        const info = infoOf(id)!;
        const end = info.summary.logEnds[name];
        const own = info.summary.views[0];
        const sources =
          end?.complete === false ? (end.awaitingFrom ?? []) : own ? [...own.shards[k]!.members, ...(own.holders[k] ?? [])] : [];
        for (const d of sources) if (!seen.has(d) && !next.includes(d)) next.push(d);
      }
      // No new source (or a cycle back to members already seen): every member along the chain was
      // waiting, so nothing was delivered since the longest of their own copies; take all of them.
      if (next.length === 0) return [...seen];
      generation = next;
    }
    return generation.length === 0 ? [] : null;
  }

  // =============================================================== view activation

  /** donors[k]: members to ask for shard k's state; donorEnds (restart only): the donors' log ends. */
  #activate(view: View, donors: readonly (readonly number[])[], donorEnds: readonly number[] | null): void {
    const old = this.#active;
    if (old) this.#flushView(old);
    const myRank = rankOf(view, this.selfId);
    assert(myRank >= 0, `activating view ${view.vid} without member ${this.selfId}`);
    assert(!old || view.vid > old.view.vid, `view ${view.vid} after ${old?.view.vid}`);
    const table = new ControlTable(view.vid, view.members.length, myRank, view.shards.length, this.#config.heartbeatPeriodMs);
    // Suspicions are not carried over: a member that failed while the last view ended is found again by
    // this view's failure detector (carrying them would also re-suspect members that were merely slow).
    const suspected = new Set<number>();
    const a: ActiveView = {
      view,
      myRank,
      table,
      shards: new Map(),
      parked: new Map(),
      suspected,
      wedged: false,
      loggedKey: null,
      logging: false,
      shardTrimLogging: new Set(),
      joinersSent: null,
      leaving: false,
      trimDelivered: false,
      installing: false,
      wanted: new Map(),
      unheard: null,
    };
    if (this.#forming) {
      this.#forming = false;
      const others = view.members.filter((m) => m.id !== this.selfId).map((m) => m.id);
      if (others.length > 0) a.unheard = new Set(others);
    }
    this.#log = this.#baseLog.child({ incarnation: this.#incarnation, view: view.vid });
    const limits = this.#config;
    const multicastOut: MulticastOutput = this.#out;
    for (const s of view.shards) {
      const isMember = s.members.includes(this.selfId);
      const wasMember = old !== null && old.view.shards[s.index]!.members.includes(this.selfId);
      const oldMc = old?.shards.get(s.index);
      if (!isMember) {
        if (oldMc) {
          this.#noteLogEnd(s.name, oldMc);
          this.#out.shardLeft(s.index, oldMc.undelivered());
        }
        continue;
      }
      let carry: ShardCarry;
      let wantFrom: number[] | null = null;
      const holders = (donors[s.index] ?? []).filter((id) => id !== this.selfId);
      if (wasMember && (oldMc || old!.parked.has(s.index))) {
        carry = oldMc ? oldMc.carry() : old!.parked.get(s.index)!;
        if (carry.held !== null) {
          // Still waiting from an earlier view. Keep the deliveries held only if a member of the shard
          // with a complete copy stayed (it will answer with a state at least as new as they are);
          // otherwise the state comes from a former holder and the held deliveries are dropped.
          const completeStayed = oldMc
            ? holders.filter((id) => {
                const r = oldMc.members.indexOf(id);
                // a row that never arrived says nothing (its awaiting column is a default 0)
                return r >= 0 && oldMc.rowSeen(r) && oldMc.rows[r]![ShardRow.awaiting] === 0;
              })
            : [];
          const before = old!.wanted.get(s.index)?.donors ?? this.#awaitingFrom.get(s.name) ?? [];
          if (completeStayed.length > 0) wantFrom = completeStayed;
          else {
            carry = discardHeld(carry);
            wantFrom = unique([...before, ...holders]).filter((id) => id !== this.selfId);
          }
        }
      } else {
        const end = this.#logEnds.get(s.name);
        carry = freshCarry(end?.version ?? VERSION_NONE, end?.timestampUs ?? 0);
        let from = holders;
        if (from.length === 0 && this.#incomplete.has(s.name)) from = (this.#awaitingFrom.get(s.name) ?? []).filter((id) => id !== this.selfId);
        const donorEnd = donorEnds === null ? null : (donorEnds[s.index] ?? VERSION_NONE);
        const behind = donorEnd === null || donorEnd > carry.deliveredVersion;
        // A total restart goes on from the history its donors hold. A copy reaching beyond it holds
        // deliveries no donor made (so never persisted on every member): it is replaced by a whole state.
        const ahead = donorEnd !== null && from.length > 0 && carry.lastPayloadVersion > donorEnd;
        if (ahead) {
          this.#log.warn({ shard: s.index, localEnd: carry.lastPayloadVersion, donorEnd }, 'local copy reaches beyond the restart history; replacing it');
          this.#emptied.add(s.name);
          this.#logEnds.delete(s.name);
          carry = freshCarry();
        }
        if (from.length > 0 && (behind || ahead)) {
          carry = holdCarry(carry);
          wantFrom = [...from];
        }
      }
      const needState = wantFrom !== null;
      if (needState) {
        this.#incomplete.add(s.name);
        this.#awaitingFrom.set(s.name, wantFrom!);
      } else {
        this.#incomplete.delete(s.name);
        this.#awaitingFrom.delete(s.name);
      }
      if (!s.provisioned) {
        a.parked.set(s.index, carry);
        if (oldMc) this.#out.shardLeft(s.index, []);
        continue;
      }
      const mc = new ShardMulticast({
        view: view.vid,
        shardIndex: s.index,
        name: s.name,
        members: s.members,
        selfId: this.selfId,
        limits,
        hlc: this.#hlc,
        out: multicastOut,
        carry,
        trace: this.#trace,
      });
      a.shards.set(s.index, mc);
      if (needState) {
        const minVersion = donorEnds !== null ? (donorEnds[s.index] ?? VERSION_NONE) : VERSION_NONE;
        a.wanted.set(s.index, {
          donors: wantFrom!,
          next: 0,
          req: 0,
          sentUs: 0,
          installing: false,
          refusals: new Map(),
          anyway: null,
          minVersion,
          transfer: null,
          prefetched: null,
          progressLoggedUs: 0,
        });
      }
    }
    this.#active = a;
    this.#mode = 'active';
    for (const m of view.members) this.#known.set(m.id, m);
    this.#updatePeers();
    const peers = view.members.filter((m) => m.id !== this.selfId).map((m) => m.id);
    this.#detector.watch(peers, this.#nowUs);
    this.#lastHeartbeatUs = this.#nowUs;
    this.#pendingJoins.forEach((p, id) => {
      if (rankOf(view, id) >= 0) this.#pendingJoins.delete(id);
    });
    this.#failRequests((to) => rankOf(view, to) < 0, 'member left the view');
    for (const mc of a.shards.values()) mc.tick(this.#nowUs);
    if (a.unheard === null) this.#announce(a);
    else this.#log.info({ members: view.members.map((m) => m.id) }, 'initial view formed: serving once every member is heard in it');
    // Frames that arrived early for this view.
    const future = this.#future;
    this.#future = [];
    this.#futureBytes = 0;
    for (const f of future) {
      const vid = frameView(f.frame);
      if (vid >= view.vid && this.#active === a) this.onFrame(f.from, f.frame);
    }
    for (const [k, want] of a.wanted) this.#askNextDonor(a, k, want, true);
    const deferred = this.#deferredStateReqs;
    this.#deferredStateReqs = [];
    for (const d of deferred) this.#onStateRequest(d.from, d.msg);
    if (suspected.size > 0) this.#wedge(a);
    this.#flushView(a);
  }

  #noteLogEnd(name: string, mc: ShardMulticast): void {
    if (mc.awaitingState) {
      // The log holds what this member had before it started waiting.
      this.#incomplete.add(name);
      const want = this.#active?.wanted.get(mc.shardIndex);
      if (want) this.#awaitingFrom.set(name, [...want.donors]);
      return;
    }
    if (mc.lastPayloadVersion >= 0) this.#logEnds.set(name, { version: mc.lastPayloadVersion, timestampUs: mc.lastTimestampUs });
    this.#incomplete.delete(name);
    this.#awaitingFrom.delete(name);
  }

  /** The members shard `name` waits for at this member ([] when its copy is complete). */
  awaitingFrom(k: number): readonly number[] {
    return this.#awaitingFrom.get(this.#shardNames[k]!) ?? [];
  }

  // =============================================================== state transfer

  #stateTick(a: ActiveView): void {
    for (const [k, want] of a.wanted) {
      if (want.installing) continue;
      const donor = want.transfer?.donor ?? want.donors[(want.next - 1 + want.donors.length) % Math.max(1, want.donors.length)];
      // A donor in the view, or one already sending chunks, gets stateTransferTimeoutMs per chunk; a former
      // holder outside the view that has not answered yet (maybe down, maybe rejoining) is asked again every
      // joinRetryMs, round-robin.
      const inView = donor !== undefined && rankOf(a.view, donor) >= 0;
      const lost = donor === undefined || a.suspected.has(donor);
      const waitUs = (inView || want.transfer !== null ? this.#config.stateTransferTimeoutMs : this.#config.joinRetryMs) * US_PER_MS;
      if (lost || this.#nowUs - want.sentUs > waitUs) this.#askNextDonor(a, k, want);
    }
  }

  /**
   * When every member this one waits on (directly or through redirects) has refused because it waits
   * too, and they all wait only on each other, nothing was delivered in the shard since their copies
   * ended: the longest of those copies (ties: lowest id) is the latest history. Null while that is not
   * established (some member not heard from yet, or waiting on someone outside the set).
   */
  #closedSetWinner(a: ActiveView, k: number, want: WantedState): number | null {
    const set = new Set([this.selfId, ...want.refusals.keys()]);
    if (!want.donors.every((id) => want.refusals.has(id))) return null;
    for (const r of want.refusals.values()) if (!r.awaiting.every((id) => set.has(id))) return null;
    let best = { id: this.selfId, logEnd: this.#localEnd(a, k) };
    for (const [id, r] of want.refusals) {
      if (r.logEnd > best.logEnd || (r.logEnd === best.logEnd && id < best.id)) best = { id, logEnd: r.logEnd };
    }
    return best.id;
  }

  #askNextDonor(a: ActiveView, k: number, want: WantedState, first = false): void {
    const name = a.view.shards[k]!.name;
    want.transfer = null;
    want.prefetched = null;
    if (want.donors.length === 0 && this.#emptied.has(name)) {
      // Never serve a copy that a partly installed state emptied: keep waiting for a holder to appear.
      if (this.#nowUs - want.sentUs >= this.#config.joinRetryMs * US_PER_MS) {
        want.sentUs = this.#nowUs;
        this.#log.error({ shard: k }, 'no member holds this shard state and the local copy was emptied by an interrupted transfer; waiting');
      }
      return;
    }
    if (want.donors.length === 0) {
      // Nobody holds this shard's state: start from what this member has.
      a.wanted.delete(k);
      const mc = a.shards.get(k);
      if (mc?.awaitingState) mc.releaseFromLocal();
      this.#incomplete.delete(a.view.shards[k]!.name);
      this.#awaitingFrom.delete(a.view.shards[k]!.name);
      this.#out.shardReady(k);
      this.#log.warn({ shard: k }, 'no member holds this shard state; continuing from the local log');
      return;
    }
    if (!first && want.next > 0 && want.next % want.donors.length === 0) {
      this.#log.warn({ shard: k, donors: want.donors }, 'every donor failed to transfer state; retrying');
    }
    const donor = want.anyway ?? want.donors[want.next % want.donors.length]!;
    want.next++;
    want.req = this.#nextStateReq++;
    want.sentUs = this.#nowUs;
    // What this member's store holds: its copy as it was before waiting (held deliveries are not in it).
    const from = this.#localEnd(a, k);
    const fromLog = rankOf(a.view, donor) < 0;
    this.#sendMsg(donor, {
      t: 'stateReq',
      shard: k,
      vid: a.view.vid,
      from,
      req: want.req,
      ...(want.anyway !== null ? { anyway: true } : {}),
      ...(fromLog ? { fromLog: true } : {}),
    });
  }

  /** Asks the donor of the transfer under way for its next chunk (the wait for it starts again). */
  #askNextChunk(a: ActiveView, k: number, want: WantedState): void {
    const t = want.transfer!;
    want.sentUs = this.#nowUs;
    this.#sendMsg(t.donor, {
      t: 'stateReq',
      shard: k,
      vid: a.view.vid,
      from: t.from,
      req: want.req,
      ...(want.anyway !== null ? { anyway: true } : {}),
      cont: { kind: t.kind, to: t.to, lastPayload: t.lastPayload, lastTimestampUs: t.lastTimestampUs, chunk: t.chunk, cursor: t.cursor },
    });
  }

  /** The last payload version of this member's own copy of shard k (what a transfer continues). */
  #localEnd(a: ActiveView, k: number): number {
    const name = a.view.shards[k]!.name;
    if (this.#emptied.has(name)) return VERSION_NONE;
    const mc = a.shards.get(k);
    return mc ? mc.localCopy.lastPayloadVersion : (this.#logEnds.get(name)?.version ?? VERSION_NONE);
  }

  #onStateRequest(from: number, msg: Extract<ControlMessage, { t: 'stateReq' }>): void {
    if (msg.cont) return this.#onChunkRequest(from, msg, msg.cont);
    const a = this.#active;
    const outOfGroup = this.#mode === 'joining' || this.#mode === 'left' || this.#mode === 'stopped' || this.#mode === 'idle';
    if (outOfGroup) {
      // A former holder answers from its log; a member the requester expected in its view left before
      // getting there, and its log may end before that view's start.
      if (msg.fromLog || msg.anyway) return this.#answerFromLog(from, msg);
      this.#sendMsg(from, { t: 'state', shard: msg.shard, req: msg.req, ok: false, reason: 'this member left the group' });
      return;
    }
    if (!a || this.#mode !== 'active' || a.view.vid < msg.vid) {
      // Answer once this member reaches the requester's view: the state must cover everything delivered
      // before that view started (the requester holds what is delivered after). If this member never
      // gets there, the requester times out and asks another donor.
      if (this.#deferredStateReqs.length < DEFERRED_STATE_REQUESTS_MAX) this.#deferredStateReqs.push({ from, msg });
      return;
    }
    const shard = a.view.shards[msg.shard];
    const mc = a.shards.get(msg.shard);
    if (msg.anyway && shard && mc?.awaitingState) {
      const local = mc.localCopy;
      const end = this.#localEnd(a, msg.shard);
      return this.#produce(from, msg, shard.name, end, end, end === VERSION_NONE ? 0 : local.lastTimestampUs);
    }
    let toVersion: number;
    let lastPayload: number;
    let lastTimestampUs: number;
    if (mc && !mc.awaitingState) {
      toVersion = mc.deliveredVersion;
      lastPayload = mc.lastPayloadVersion;
      lastTimestampUs = mc.lastTimestampUs;
    } else if (!mc) {
      return this.#answerFromLog(from, msg);
    } else {
      const redirect = a.wanted.get(msg.shard)?.donors ?? [];
      const logEnd = this.#localEnd(a, msg.shard);
      this.#sendMsg(from, { t: 'state', shard: msg.shard, req: msg.req, ok: false, reason: 'my copy is incomplete', redirect, logEnd });
      return;
    }
    this.#produce(from, msg, shard!.name, toVersion, lastPayload, lastTimestampUs);
  }

  /** A former holder (not ordering the shard now) serves the history in its log, if its copy is complete. */
  #answerFromLog(from: number, msg: Extract<ControlMessage, { t: 'stateReq' }>): void {
    const name = this.#shardNames[msg.shard];
    if (name === undefined || (this.#incomplete.has(name) && !msg.anyway)) {
      const redirect = name === undefined ? [] : (this.#awaitingFrom.get(name) ?? []);
      const logEnd = name === undefined || this.#emptied.has(name) ? VERSION_NONE : (this.#logEnds.get(name)?.version ?? VERSION_NONE);
      this.#sendMsg(from, { t: 'state', shard: msg.shard, req: msg.req, ok: false, reason: 'no complete copy of this shard here', redirect, logEnd });
      return;
    }
    const end = this.#logEnds.get(name);
    const version = end?.version ?? VERSION_NONE;
    this.#produce(from, msg, name, version, version, end?.timestampUs ?? 0);
  }

  /**
   * A later chunk of a transfer this member began: produced from its log with what the first chunk said
   * (the store refuses if its copy can no longer give it), whatever view either member is in now.
   */
  #onChunkRequest(from: number, msg: Extract<ControlMessage, { t: 'stateReq' }>, cont: ChunkRequest): void {
    const name = this.#shardNames[msg.shard];
    if (name === undefined || this.#mode === 'stopped' || this.#emptied.has(name) || (this.#incomplete.has(name) && !msg.anyway)) {
      this.#sendMsg(from, { t: 'state', shard: msg.shard, req: msg.req, ok: false, reason: 'this member can no longer continue the transfer' });
      return;
    }
    this.#produce(from, msg, name, cont.to, cont.lastPayload, cont.lastTimestampUs, { chunk: cont.chunk, kind: cont.kind, cursor: cont.cursor });
  }

  #produce(
    to: number,
    msg: Extract<ControlMessage, { t: 'stateReq' }>,
    name: string,
    toVersion: number,
    lastPayload: number,
    lastTimestampUs: number,
    next: { chunk: number; kind: 'tail' | 'state'; cursor: Uint8Array } | null = null,
  ): void {
    const token = this.#nextToken++;
    this.#produceJobs.set(token, { to, shard: msg.shard, req: msg.req, from: msg.from, toVersion, lastPayload, lastTimestampUs, chunk: next?.chunk ?? 0 });
    this.#out.produceState(token, {
      name,
      shardIndex: msg.shard,
      fromVersion: msg.from,
      toVersion,
      continuation: next && { kind: next.kind, cursor: next.cursor },
      chunkBytes: this.#config.stateChunkBytes,
    });
  }

  #onStateReply(from: number, msg: Extract<ControlMessage, { t: 'state' }>): void {
    const a = this.#active;
    const want = a?.wanted.get(msg.shard);
    if (!a || !want || want.req !== msg.req) return;
    if (want.installing) {
      // the chunk asked for while the previous one installs: it waits for that install (one at most)
      const t = want.transfer;
      if (msg.ok && t !== null && from === t.donor && msg.chunk === t.chunk && want.prefetched === null) want.prefetched = { from, msg };
      return;
    }
    if (!msg.ok) {
      this.#log.warn({ shard: msg.shard, donor: from, reason: msg.reason, redirect: msg.redirect }, 'donor refused state transfer');
      // Only a refusal from a member that is itself waiting (it says whom for) tells anything about where
      // the history is; other refusals (the donor left, is behind) just mean: ask again later.
      if (msg.redirect !== undefined) want.refusals.set(from, { logEnd: msg.logEnd ?? VERSION_NONE, awaiting: msg.redirect });
      for (const id of msg.redirect ?? []) {
        if (id !== this.selfId && !want.donors.includes(id) && want.donors.length < DONORS_MAX) want.donors.push(id);
      }
      const winner = this.#closedSetWinner(a, msg.shard, want);
      if (winner === this.selfId) {
        this.#log.warn({ shard: msg.shard, waiting: [...want.refusals.keys()] }, 'every reachable copy waits on the others; this one is the longest');
        return this.#askNextDonor(a, msg.shard, { ...want, donors: [] });
      }
      if (winner !== null) want.anyway = winner;
      this.#askNextDonor(a, msg.shard, want);
      return;
    }
    const t = want.transfer;
    // a chunk other than the one asked for (a late duplicate) is ignored: the timeout covers its loss
    if (t !== null ? from !== t.donor || msg.chunk !== t.chunk : msg.chunk !== 0) return;
    if (t === null && msg.lastPayload < want.minVersion) {
      this.#log.warn({ shard: msg.shard, donor: from, lastPayload: msg.lastPayload, minVersion: want.minVersion }, 'donor state shorter than required');
      return this.#askNextDonor(a, msg.shard, want);
    }
    this.#installChunk(a, msg.shard, want, from, msg);
  }

  /**
   * Hands a chunk to the store and, when more follow, asks the donor for the next one right away: the
   * donor produces and sends it while this one installs (installs themselves stay one at a time, in order).
   */
  #installChunk(a: ActiveView, k: number, want: WantedState, donor: number, msg: StateReply): void {
    const bytes = (want.transfer?.bytes ?? 0) + msg.bytes.length;
    const name = a.view.shards[k]!.name;
    if (msg.chunk === 0) {
      want.progressLoggedUs = this.#nowUs;
      this.#log.info({ shard: name, donor, kind: msg.kind, fromVersion: msg.from, toVersion: msg.to }, 'state transfer started');
    } else if (this.#nowUs - want.progressLoggedUs >= STATE_PROGRESS_LOG_US) {
      want.progressLoggedUs = this.#nowUs;
      this.#log.info({ shard: name, donor, chunks: msg.chunk + 1, bytes }, 'state transfer in progress');
    }
    want.installing = true;
    const token = this.#nextToken++;
    this.#installJobs.set(token, {
      shard: k,
      req: msg.req,
      donor,
      kind: msg.kind,
      from: msg.from,
      toVersion: msg.to,
      lastPayload: msg.lastPayload,
      lastTimestampUs: msg.lastTimestampUs,
      chunk: msg.chunk,
      next: msg.next,
      bytes,
    });
    want.transfer =
      msg.next === null
        ? null
        : {
            donor,
            kind: msg.kind,
            from: msg.from,
            to: msg.to,
            lastPayload: msg.lastPayload,
            lastTimestampUs: msg.lastTimestampUs,
            chunk: msg.chunk + 1,
            cursor: msg.next,
            bytes,
          };
    this.#out.installState(token, a.view.shards[k]!.name, k, {
      kind: msg.kind,
      bytes: msg.bytes,
      fromVersion: msg.from,
      toVersion: msg.to,
      first: msg.chunk === 0,
      last: msg.next === null,
    });
    if (want.transfer !== null) this.#askNextChunk(a, k, want);
  }

  // =============================================================== membership predicates

  #suspect(a: ActiveView, id: number, why: string): void {
    if (a.suspected.has(id) || rankOf(a.view, id) < 0) return;
    if (id === this.selfId) return;
    a.suspected.add(id);
    a.table.mine.suspected = a.leaving ? [...a.suspected, this.selfId] : [...a.suspected];
    a.table.touch();
    this.#log.warn({ member: id, why }, 'suspecting member');
    this.#failRequests((to) => to === id, `member ${id} is leaving the view`);
    this.#wedge(a);
  }

  #wedge(a: ActiveView): void {
    if (a.wedged) return;
    a.wedged = true;
    for (const mc of a.shards.values()) mc.wedge();
    a.table.mine.wedged = true;
    a.table.touch();
  }

  #leaderRank(a: ActiveView): number {
    return a.view.members.findIndex((m) => !a.suspected.has(m.id));
  }

  #liveRanks(a: ActiveView): number[] {
    const out: number[] = [];
    a.view.members.forEach((m, r) => {
      if (!a.suspected.has(m.id)) out.push(r);
    });
    return out;
  }

  #evaluate(a: ActiveView): void {
    const view = a.view;
    const rows = a.table.rows;
    // 1. Adopt the suspicions of every row we do not suspect, in rank order.
    for (let r = 0; r < rows.length; r++) {
      if (r === a.myRank) continue;
      const id = view.members[r]!.id;
      if (a.suspected.has(id)) continue;
      for (const s of rows[r]!.suspected) {
        if (s === this.selfId) return this.#leave(`suspected by member ${id}`);
        if (!a.suspected.has(s) && rankOf(view, s) >= 0) {
          this.#suspect(a, s, `suspected by member ${id}`);
        }
      }
    }
    if (a.leaving && a.table.mine.committed >= 1) {
      // Leaving on purpose: done once the change that removes this member is committed.
      if (a.table.mine.proposal?.removes.includes(this.selfId)) return this.#leave('left the group');
    }
    // 2. Majority rule.
    if (this.#config.majorityRule && 2 * a.suspected.size >= view.members.length) {
      return this.#stop(`${a.suspected.size} of ${view.members.length} members unreachable: this member is in a minority`);
    }
    // 3. Wedge on any suspicion or proposal.
    const leaderRank = this.#leaderRank(a);
    if (leaderRank < 0) return this.#stop('every member is suspected');
    if (!a.wedged && (a.suspected.size > 0 || a.table.mine.proposal || rows[leaderRank]!.proposal)) this.#wedge(a);
    // 4. Leader / follower.
    if (leaderRank === a.myRank) this.#leaderStep(a);
    else this.#followerStep(a, leaderRank);
    if (this.#active !== a || this.#mode !== 'active') return;
    // 5. Shard leaders compute and log ragged trims.
    this.#shardLeaderStep(a);
    // 6. Deliver up to the committed trims, wait for persistence, install the next view.
    this.#trimStep(a);
  }

  #takeoverReady(a: ActiveView): boolean {
    const lower = a.view.members.slice(0, a.myRank).map((m) => m.id);
    if (lower.length === 0) return true;
    return this.#liveRanks(a).every((r) => {
      const row = a.table.rows[r]!;
      return lower.every((id) => row.suspected.includes(id));
    });
  }

  /** The proposal a new leader must continue with, if any row holds one. */
  #adoptable(a: ActiveView): { proposal: Proposal; committed: 0 | 1 | 2 } | null {
    const rows = a.table.rows;
    for (const row of rows) if (row.committed === 2 && row.proposal) return { proposal: row.proposal, committed: 2 };
    let best: Proposal | null = null;
    for (const row of rows) {
      const p = row.proposal;
      if (!p) continue;
      if (!best || p.leaderRank > best.leaderRank || (p.leaderRank === best.leaderRank && p.trims && !best.trims)) best = p;
    }
    if (!best) return null;
    const key = membershipKey(best);
    const committed = rows.some((row) => row.committed >= 1 && row.proposal && membershipKey(row.proposal) === key) ? 1 : 0;
    return { proposal: best, committed };
  }

  /** Pending joiners that still ask (a joiner repeats its request every joinRetryMs). */
  #freshJoins(): PendingJoin[] {
    const staleUs = 3 * this.#config.joinRetryMs * US_PER_MS;
    for (const [id, p] of this.#pendingJoins) if (this.#nowUs - p.seenUs > staleUs) this.#pendingJoins.delete(id);
    return [...this.#pendingJoins.values()];
  }

  #needsChange(a: ActiveView): boolean {
    if (a.suspected.size > 0) return true;
    for (const p of this.#freshJoins()) {
      if (this.#nowUs - p.sinceUs >= this.#config.joinBatchMs * US_PER_MS) return true;
    }
    return this.#liveRanks(a).some((r) => a.table.rows[r]!.wantNewView);
  }

  #leaderStep(a: ActiveView): void {
    if (a.logging || !this.#takeoverReady(a)) return;
    const mine = a.table.mine;
    if (!mine.proposal) {
      const adopted = this.#adoptable(a);
      if (adopted) {
        if (adopted.proposal.trims && a.loggedKey !== fullKey(adopted.proposal)) {
          return this.#logTrims(a, adopted.proposal, () => this.#setProposal(a, adopted.proposal, adopted.committed, true));
        }
        this.#setProposal(a, adopted.proposal, adopted.committed, true);
      } else if (this.#needsChange(a)) {
        const joins = this.#freshJoins()
          .map((p) => p.info)
          .filter((j) => rankOf(a.view, j.id) < 0)
          .slice(0, this.#config.joinsPerViewMax);
        const proposal: Proposal = {
          leader: this.selfId,
          leaderRank: a.myRank,
          removes: [...a.suspected].sort((x, y) => x - y),
          joins,
          trims: null,
        };
        this.#log.info({ removes: proposal.removes, joins: joins.map((j) => j.id) }, 'proposing view change');
        this.#setProposal(a, proposal, 0, false);
      }
      return;
    }
    const p = mine.proposal;
    const live = this.#liveRanks(a);
    if (mine.committed === 0) {
      const key = membershipKey(p);
      if (live.every((r) => { const q = a.table.rows[r]!.proposal; return q !== null && membershipKey(q) === key; })) {
        mine.committed = 1;
        a.table.touch();
        this.#log.info({ removes: p.removes, joins: p.joins.map((j) => j.id) }, 'membership change committed');
      }
    }
    if (mine.committed >= 1) this.#sendJoinerViews(a, p);
    if (mine.committed >= 1 && p.trims === null && !a.logging) {
      const trims: (TrimDecision | null)[] = [];
      for (const s of a.view.shards) {
        const liveMembers = s.members.filter((id) => !a.suspected.has(id));
        if (!s.provisioned || liveMembers.length === 0) {
          trims.push(null);
          continue;
        }
        let found: TrimDecision | null = null;
        for (const id of liveMembers) {
          const t = a.table.rows[rankOf(a.view, id)]!.shardTrims[s.index];
          if (t) {
            found = t;
            break;
          }
        }
        if (!found) return; // a shard leader has not published yet
        trims.push(found);
      }
      const withTrims: Proposal = { ...p, trims };
      this.#logTrims(a, withTrims, () => this.#setProposal(a, withTrims, 1, false));
      return;
    }
    if (mine.committed === 1 && p.trims !== null) {
      const key = fullKey(p);
      if (live.every((r) => { const q = a.table.rows[r]!.proposal; return q !== null && fullKey(q) === key; })) {
        mine.committed = 2;
        a.table.touch();
        this.#log.info('ragged trims committed');
      }
    }
  }

  #setProposal(a: ActiveView, p: Proposal, committed: 0 | 1 | 2, relabel: boolean): void {
    const mine = a.table.mine;
    const proposal = relabel ? { ...p, leader: this.selfId, leaderRank: a.myRank } : p;
    if (mine.committed >= 1 && mine.proposal) {
      assert(membershipKey(mine.proposal) === membershipKey(proposal), `view ${a.view.vid}: a second membership change after a commit`);
    }
    if (mine.committed === 2 && mine.proposal) {
      assert(fullKey(mine.proposal) === fullKey(proposal), `view ${a.view.vid}: second trims after a commit`);
    }
    const sameMembership = mine.proposal !== null && membershipKey(mine.proposal) === membershipKey(proposal);
    const sameFull = mine.proposal !== null && fullKey(mine.proposal) === fullKey(proposal);
    mine.proposal = proposal;
    mine.committed = Math.max(committed, sameFull ? mine.committed : sameMembership ? Math.min(mine.committed, 1) : 0) as 0 | 1 | 2;
    a.table.touch();
    this.#wedge(a);
  }

  #followerStep(a: ActiveView, leaderRank: number): void {
    if (a.logging) return;
    const rows = a.table.rows;
    let src: { proposal: Proposal; committed: 0 | 1 | 2 } | null = null;
    for (const row of rows) {
      if (row.committed === 2 && row.proposal) {
        src = { proposal: row.proposal, committed: 2 };
        break;
      }
    }
    if (!src) {
      const committedRow = rows.find((row) => row.committed >= 1 && row.proposal !== null);
      const lp = rows[leaderRank]!.proposal;
      if (lp && (!committedRow || membershipKey(committedRow.proposal!) === membershipKey(lp))) {
        src = { proposal: lp, committed: committedRow ? 1 : 0 };
      } else if (committedRow) {
        src = { proposal: committedRow.proposal!, committed: 1 };
      }
    }
    if (!src) return;
    const mine = a.table.mine;
    if (mine.proposal && fullKey(mine.proposal) === fullKey(src.proposal) && mine.committed >= src.committed) return;
    if (mine.committed >= 1 && mine.proposal && membershipKey(mine.proposal) !== membershipKey(src.proposal)) {
      // Our committed membership stays; an uncommitted leader copy with a different change is not adopted.
      return;
    }
    const s = src;
    if (s.proposal.trims && a.loggedKey !== fullKey(s.proposal)) {
      return this.#logTrims(a, s.proposal, () => this.#setProposal(a, s.proposal, s.committed, false));
    }
    this.#setProposal(a, s.proposal, s.committed, false);
  }

  /** Log the trims of this member's shards in `p` (in order), then continue. */
  #logTrims(a: ActiveView, p: Proposal, then: () => void): void {
    assert(p.trims !== null, 'logging a proposal without trims');
    a.logging = true;
    const next = this.#nextOf(a, p).view;
    const mine = a.view.shards.filter((s) => s.members.includes(this.selfId) && p.trims![s.index]);
    const key = fullKey(p);
    const finish = (): void => {
      if (this.#active !== a) return;
      a.logging = false;
      a.loggedKey = key;
      then();
    };
    if (mine.length === 0) return finish();
    mine.forEach((s, i) => {
      const record: RaggedTrimRecord = { vid: a.view.vid, shardIndex: s.index, shardName: s.name, trim: p.trims![s.index]!, nextView: next };
      this.#storage({ kind: 'logTrim', record }, i === mine.length - 1 ? finish : () => {});
    });
  }

  #nextOf(a: ActiveView, p: Proposal): { view: View; donors: readonly (readonly number[])[] } {
    const view = nextView(this.#config.layout.subgroups, a.view, { removes: p.removes, joins: p.joins });
    return { view, donors: view.holders };
  }

  #sendJoinerViews(a: ActiveView, p: Proposal): void {
    const key = membershipKey(p);
    if (a.joinersSent === key || p.joins.length === 0) return;
    a.joinersSent = key;
    const next = this.#nextOf(a, p);
    for (const j of p.joins) {
      this.#learn(j);
      this.#sendMsg(j.id, { t: 'view', view: next.view, donors: next.donors });
    }
  }

  #shardLeaderStep(a: ActiveView): void {
    const mine = a.table.mine;
    if (mine.committed < 1) return;
    for (const [k, mc] of a.shards) {
      if (mine.shardTrims[k] || a.shardTrimLogging.has(k)) continue;
      const live = mc.members.filter((id) => !a.suspected.has(id));
      if (live[0] !== this.selfId) continue;
      const allWedged = live.every((id) => (id === this.selfId ? a.wedged : a.table.rows[rankOf(a.view, id)]!.wedged));
      if (!allWedged) continue;
      const counts = mc.members.map((_, r) => Math.min(...live.map((id) => mc.rows[mc.members.indexOf(id)]![ShardRow.received + r]!)));
      const trim: TrimDecision = { counts, participants: live };
      const next = this.#nextOf(a, mine.proposal!).view;
      a.shardTrimLogging.add(k);
      this.#log.info({ shard: mc.name, counts, participants: live }, 'ragged trim computed');
      this.#storage({ kind: 'logTrim', record: { vid: a.view.vid, shardIndex: k, shardName: mc.name, trim, nextView: next } }, () => {
        if (this.#active !== a) return;
        mine.shardTrims[k] = trim;
        a.table.touch();
      });
    }
  }

  #trimStep(a: ActiveView): void {
    const mine = a.table.mine;
    const p = mine.proposal;
    if (!p || mine.committed !== 2 || a.loggedKey !== fullKey(p)) return;
    if (!a.trimDelivered) {
      for (const [k, mc] of a.shards) {
        const trim = p.trims![k];
        if (!trim) continue;
        if (!mc.hasAll(trim.counts)) {
          return this.#leave(`shard ${mc.name}: the ragged trim includes messages this member never received`);
        }
      }
      for (const [k, mc] of a.shards) {
        const trim = p.trims![k];
        if (trim) mc.deliverTrim(trim.counts);
      }
      a.trimDelivered = true;
      a.table.touch();
    }
    if (a.installing) return;
    for (const mc of a.shards.values()) {
      const target = mc.lastPayloadVersion;
      for (let r = 0; r < mc.members.length; r++) {
        const id = mc.members[r]!;
        if (a.suspected.has(id) || mc.rows[r]![ShardRow.awaiting] === 1) continue;
        if (mc.rows[r]![ShardRow.persisted]! < target) return;
      }
    }
    if (p.removes.includes(this.selfId)) return this.#leave('removed from the group');
    a.installing = true;
    const next = this.#nextOf(a, p);
    this.#saveView(next.view, () => {
      if (this.#active === a && this.#mode === 'active') this.#activate(next.view, next.donors, null);
    });
  }

  #leave(reason: string): void {
    this.#exit('left', reason);
  }

  #stop(reason: string): void {
    this.#exit('minority', reason);
  }

  #exit(kind: 'left' | 'minority', reason: string): void {
    const a = this.#active;
    this.#log.warn({ reason }, kind === 'left' ? 'leaving the view' : 'stopping: minority');
    if (a) {
      for (const [k, mc] of a.shards) {
        this.#noteLogEnd(mc.name, mc);
        this.#out.shardLeft(k, mc.undelivered());
      }
    }
    this.#active = null;
    this.#mode = kind === 'left' ? 'left' : 'stopped';
    this.#pendingJoins.clear();
    this.#failRequests(() => true, 'this member left the group');
    this.#out.stopped(kind, reason);
  }
}

export type { ControlRow };
