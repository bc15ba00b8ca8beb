import { assert } from '../assert.js';
import { SquallError } from '../api/errors.js';
import { Deque } from './deque.js';
import type { HybridClock } from './hlc.js';
import type { Delivered, ShardFrontiers } from './ordered-shard.js';
import { SEQ_MAX, VERSION_NONE, makeVersion } from './version.js';
import {
  DATA_HEADER_BYTES,
  FrameKind,
  HEADER_BYTES,
  readU16,
  readU32,
  readU53,
  writeHeader,
  writeU16,
  writeU32,
  writeU53,
} from './wire.js';

/**
 * Ordered multicast of one shard in one view (Derecho's MulticastGroup for one subgroup shard), as a
 * pure state machine: inputs are enqueue(payload), onData(frame), onRow(frame), persisted(version),
 * tick(nowUs) and flush(nowUs); outputs go to a MulticastOutput (frames to push, deliveries, frontiers,
 * writable). No I/O, no clock reads.
 *
 * Ordering. The S members of the shard are its senders; rank r's k-th index has sequence k*S + r. An
 * index is a payload or a null. Every member keeps, per sender, the count of contiguous indexes received
 * (received[r]); its in-order prefix is seqEnd = min_r(received[r]*S + r) (every seq below is here). A
 * seq is delivered once it is below every member's seqEnd (received by every member of the shard).
 *
 * Invariants (asserted):
 * - received[r] only grows, by whole contiguous batches (a batch starts exactly at received[r]);
 * - deliveredEnd ≤ min over members of seqEnd; delivered versions strictly increase;
 * - delivered timestamps never decrease (max of the running maximum and the batch's HLC timestamp);
 * - own payloads queued + in flight ≤ windowPayloads and ≤ windowBytes (send() refuses beyond; one
 *   payload is always accepted when nothing is in flight, so a payload larger than windowBytes still goes);
 *   received-but-undelivered payloads per sender ≤ windowPayloads (a sender that breaks it is faulty);
 * - persistedFrontier ≤ deliveredVersion of every member, reported values never decrease;
 * - the stability frontier only moves while the view is not wedged, never decreases, and is below the
 *   timestamp of every own payload that is not yet persisted everywhere;
 * - once wedged: nothing is sent, no data is accepted, nothing is delivered except by deliverTrim().
 *
 * Null messages: nulls never trigger nulls. When payloads from sender r arrive, this member makes sure
 * its own count covers r's last payload (so r's payloads can be delivered) and, if it is idle, commits
 * nulls one batch ahead (as many as r just sent, at most nullLookaheadMax), so r's next batch of similar
 * size is deliverable without waiting for another round of nulls (the idle-sender slow path, issue #207).
 */

export interface MulticastLimits {
  readonly windowPayloads: number;
  readonly windowBytes: number;
  readonly maxPayloadBytes: number;
  readonly batchBytesMax: number;
  readonly inlinePayloadBytesMax: number;
  readonly nullLookaheadMax: number;
  readonly seqRolloverAt: number;
  /**
   * Deliveries (payload bytes) a joiner holds while its state transfer runs. At the limit it delivers no
   * more: its delivered count stays, so the senders' windows (own payloads delivered at every member) pause
   * the shard until the state is installed, and what it buffers stays within one window.
   */
  readonly joinerQueueBytesMax: number;
}

/**
 * Optional observation of protocol events (the simulation's checker uses it; production passes none).
 * Called synchronously; must not call back into the protocol.
 */
export interface MulticastTrace {
  /** This member's received count for sender `senderRank` grew to `count`. */
  received(shardIndex: number, view: number, senderRank: number, count: number): void;
  /** Payloads delivered by the protocol (before any hold for a state transfer). */
  delivered(shardIndex: number, view: number, batch: readonly Delivered[], kind: 'stable' | 'trim'): void;
}

export interface MulticastOutput {
  push(to: readonly number[], parts: readonly Uint8Array[]): void;
  deliver(shardIndex: number, batch: readonly Delivered[]): void;
  frontiers(shardIndex: number, frontiers: ShardFrontiers): void;
  writable(shardIndex: number): void;
}

/**
 * Column offsets of a shard row (one float64 each); received[r] is at `received + r`. `awaiting` is 1
 * while the member waits for its state transfer (its copy is incomplete).
 */
export const ShardRow = { delivered: 0, persisted: 1, stability: 2, awaiting: 3, received: 4 } as const;

interface Batch {
  readonly first: number;
  readonly count: number;
  readonly end: number;
  readonly timestampUs: number;
  /** Received batches: the frame, payload lengths start at DATA_HEADER_BYTES. */
  readonly frame: Uint8Array | null;
  /** Own batches: the payloads. */
  readonly payloads: readonly Uint8Array[] | null;
}

interface OwnInFlight {
  readonly index: number;
  readonly payload: Uint8Array;
  readonly timestampUs: number;
}

interface OwnUnpersisted {
  readonly version: number;
  readonly timestampUs: number;
}

/** What a shard carries from one view to the next at one member. */
export interface ShardCarry {
  readonly lastTimestampUs: number;
  readonly deliveredVersion: number;
  readonly lastPayloadVersion: number;
  readonly persistedVersion: number;
  readonly persistedFrontier: number;
  readonly stabilityFrontierUs: number;
  readonly ownUnpersisted: readonly OwnUnpersisted[];
  /** Own payloads not delivered: sent first in the next view, in order. */
  readonly resend: readonly Uint8Array[];
  /** Deliveries held while a state transfer is pending (joiner). */
  readonly held: readonly Delivered[] | null;
  /** While held: the versions this member had before it started waiting (restored if the hold is discarded). */
  readonly heldBase: { readonly deliveredVersion: number; readonly lastPayloadVersion: number; readonly lastTimestampUs: number } | null;
}

/** Start waiting for a state transfer: deliveries are held until it is installed. */
export function holdCarry(c: ShardCarry): ShardCarry {
  if (c.held !== null) return c;
  return {
    ...c,
    held: [],
    heldBase: { deliveredVersion: c.deliveredVersion, lastPayloadVersion: c.lastPayloadVersion, lastTimestampUs: c.lastTimestampUs },
  };
}

/**
 * Drop the held deliveries of a member still waiting for its state (no complete member of the shard
 * stayed: the state will come from a former holder, whose history may end before them).
 */
export function discardHeld(c: ShardCarry): ShardCarry {
  if (c.held === null || c.heldBase === null) return c;
  return {
    ...c,
    held: [],
    deliveredVersion: c.heldBase.deliveredVersion,
    lastPayloadVersion: c.heldBase.lastPayloadVersion,
    lastTimestampUs: c.heldBase.lastTimestampUs,
  };
}

export function freshCarry(lastVersion = VERSION_NONE, lastTimestampUs = 0): ShardCarry {
  return {
    lastTimestampUs,
    deliveredVersion: lastVersion,
    lastPayloadVersion: lastVersion,
    persistedVersion: lastVersion,
    persistedFrontier: VERSION_NONE,
    stabilityFrontierUs: 0,
    ownUnpersisted: [],
    resend: [],
    held: null,
    heldBase: null,
  };
}

export interface MulticastParams {
  readonly view: number;
  readonly shardIndex: number;
  readonly name: string;
  /** Member ids in shard rank order. */
  readonly members: readonly number[];
  readonly selfId: number;
  readonly limits: MulticastLimits;
  readonly hlc: HybridClock;
  readonly out: MulticastOutput;
  readonly carry: ShardCarry;
  readonly trace?: MulticastTrace | undefined;
}

const TWO_32 = 2 ** 32;

export class ShardMulticast {
  readonly view: number;
  readonly shardIndex: number;
  readonly name: string;
  readonly members: readonly number[];
  readonly myRank: number;
  readonly senders: number;
  readonly #peers: number[];
  readonly #limits: MulticastLimits;
  readonly #hlc: HybridClock;
  readonly #out: MulticastOutput;
  readonly #versionBase: number;
  readonly #trace: MulticastTrace | undefined;

  /** rows[rank] = that member's shard row (mine is rows[myRank]). */
  readonly rows: Float64Array[];
  #rowDirty = true;
  #rowsChanged = true;

  readonly #batches: Deque<Batch>[];
  /** Byte offset of the next payload inside the front batch's frame, per sender. */
  readonly #cursorBytes: number[];
  readonly #pendingPayloads: number[];
  readonly #lastPayloadEnd: number[];
  readonly #payloadsArrived: number[];

  #deliveredEnd = 0;
  #wedged = false;
  #lastTimestampUs: number;
  #deliveredVersion: number;
  #lastPayloadVersion: number;
  #persistedFrontier: number;
  #stabilityFrontierUs: number;
  #frontiersDirty = true;

  readonly #queue = new Deque<Uint8Array>(64);
  #queueBytes = 0;
  readonly #inFlight = new Deque<OwnInFlight>(64);
  #inFlightBytes = 0;
  /**
   * Own indexes delivered here (all below it). Not derivable from deliveredEnd after a ragged trim: the
   * trim can end another sender's messages past my own trim, and my payloads between the two were not
   * delivered (they are re-sent next view).
   */
  #ownDelivered = 0;
  readonly #ownUnpersisted = new Deque<OwnUnpersisted>(64);
  #refused = false;

  #held: Delivered[] | null;
  #heldBytes = 0;
  /**
   * The version an installed state transfer reached (releaseHeld): messages at or below it that become
   * deliverable here only afterwards are in that state already and are not delivered again.
   */
  #installedUpTo = VERSION_NONE;
  readonly #rowSeen: boolean[] = [];
  readonly #heldBase: ShardCarry['heldBase'];

  constructor(p: MulticastParams) {
    this.view = p.view;
    this.shardIndex = p.shardIndex;
    this.name = p.name;
    this.members = p.members;
    this.senders = p.members.length;
    this.myRank = p.members.indexOf(p.selfId);
    assert(this.myRank >= 0, `member ${p.selfId} not in shard ${p.name}`);
    this.#peers = p.members.filter((id) => id !== p.selfId);
    this.#limits = p.limits;
    this.#hlc = p.hlc;
    this.#out = p.out;
    this.#versionBase = makeVersion(p.view, 0);
    this.#trace = p.trace;
    const width = ShardRow.received + this.senders;
    this.rows = p.members.map(() => {
      const row = new Float64Array(width);
      row[ShardRow.persisted] = VERSION_NONE;
      return row;
    });
    this.#batches = p.members.map(() => new Deque<Batch>(16));
    this.#cursorBytes = p.members.map(() => 0);
    this.#pendingPayloads = p.members.map(() => 0);
    this.#lastPayloadEnd = p.members.map(() => 0);
    this.#payloadsArrived = p.members.map(() => 0);

    const c = p.carry;
    this.#lastTimestampUs = c.lastTimestampUs;
    this.#deliveredVersion = c.deliveredVersion;
    this.#lastPayloadVersion = c.lastPayloadVersion;
    this.#persistedFrontier = c.persistedFrontier;
    this.#stabilityFrontierUs = c.stabilityFrontierUs;
    for (const u of c.ownUnpersisted) this.#ownUnpersisted.push(u);
    for (const payload of c.resend) {
      this.#queue.push(payload);
      this.#queueBytes += payload.length;
    }
    this.#held = c.held ? [...c.held] : null;
    this.#heldBase = c.heldBase;
    if (this.#held) for (const d of this.#held) this.#heldBytes += d.payload.length;
    const mine = this.rows[this.myRank]!;
    mine[ShardRow.persisted] = c.persistedVersion;
    mine[ShardRow.stability] = 0;
    mine[ShardRow.awaiting] = this.#held !== null ? 1 : 0;
  }

  // ---------------------------------------------------------------- app side

  /** Queue a payload; false when the window is full (writable fires later). Throws on oversize. */
  enqueue(payload: Uint8Array): boolean {
    if (payload.length > this.#limits.maxPayloadBytes) {
      throw new SquallError('too_large', `payload of ${payload.length} bytes exceeds maxPayloadBytes ${this.#limits.maxPayloadBytes}`, {
        sizeBytes: payload.length,
        maxPayloadBytes: this.#limits.maxPayloadBytes,
      });
    }
    const count = this.#queue.length + this.#inFlight.length;
    const bytes = this.#queueBytes + this.#inFlightBytes;
    if (count >= this.#limits.windowPayloads || (count > 0 && bytes + payload.length > this.#limits.windowBytes)) {
      this.#refused = true;
      return false;
    }
    this.#queue.push(payload);
    this.#queueBytes += payload.length;
    return true;
  }

  /** Own payloads queued (not yet sent). */
  get queued(): number {
    return this.#queue.length;
  }

  /** The layer above stored every delivered payload up to `version`. */
  persisted(version: number): void {
    const mine = this.rows[this.myRank]!;
    if (version <= mine[ShardRow.persisted]!) return;
    assert(version <= this.#deliveredVersion || this.#held !== null, `${this.name}: persisted ${version} beyond delivered ${this.#deliveredVersion}`);
    mine[ShardRow.persisted] = version;
    this.#rowDirty = true;
    this.#rowsChanged = true;
  }

  get persistedVersion(): number {
    return this.rows[this.myRank]![ShardRow.persisted]!;
  }

  // ---------------------------------------------------------------- network side

  /** A batch frame from a shard member. Returns an error message if the frame breaks the protocol. */
  onData(frame: Uint8Array): string | null {
    if (this.#wedged) return null;
    if (frame.length < DATA_HEADER_BYTES) return 'short data frame';
    const r = readU16(frame, HEADER_BYTES);
    if (r >= this.senders || r === this.myRank) return `bad sender rank ${r}`;
    const first = readU32(frame, HEADER_BYTES + 4);
    const count = readU32(frame, HEADER_BYTES + 8);
    const nulls = readU32(frame, HEADER_BYTES + 12);
    const timestampUs = readU53(frame, HEADER_BYTES + 16);
    const received = this.rows[this.myRank]![ShardRow.received + r]!;
    if (first !== received) return `batch from rank ${r} starts at ${first}, expected ${received}`;
    if (count + nulls === 0) return 'empty batch';
    let bytes = DATA_HEADER_BYTES + 4 * count;
    if (bytes > frame.length) return 'truncated length table';
    for (let i = 0; i < count; i++) bytes += readU32(frame, DATA_HEADER_BYTES + 4 * i);
    if (bytes !== frame.length) return `batch frame of ${frame.length} bytes, lengths say ${bytes}`;
    this.#pendingPayloads[r]! += count;
    if (this.#pendingPayloads[r]! > this.#limits.windowPayloads) return `rank ${r} exceeded the window`;
    const end = first + count + nulls;
    if (end * this.senders + r > SEQ_MAX) return 'sequence space exhausted';
    this.#batches[r]!.push({ first, count, end, timestampUs, frame, payloads: null });
    if (this.#batches[r]!.length === 1) this.#cursorBytes[r] = DATA_HEADER_BYTES + 4 * count;
    this.rows[this.myRank]![ShardRow.received + r] = end;
    this.#trace?.received(this.shardIndex, this.view, r, end);
    if (count > 0) {
      this.#lastPayloadEnd[r] = first + count;
      this.#payloadsArrived[r]! += count;
    }
    this.#hlc.observe(timestampUs);
    this.#rowDirty = true;
    this.#rowsChanged = true;
    return null;
  }

  /** A shard row frame from member `rank`. */
  onRow(rank: number, frame: Uint8Array): string | null {
    if (rank === this.myRank || rank < 0 || rank >= this.senders) return `bad row rank ${rank}`;
    const row = this.rows[rank]!;
    if (frame.length !== HEADER_BYTES + row.byteLength) return `row frame of ${frame.length} bytes, expected ${HEADER_BYTES + row.byteLength}`;
    new Uint8Array(row.buffer, row.byteOffset, row.byteLength).set(frame.subarray(HEADER_BYTES));
    this.#rowSeen[rank] = true;
    this.#rowsChanged = true;
    return null;
  }

  /** Whether member `rank`'s row arrived in this view (before it does, its columns are only defaults). */
  rowSeen(rank: number): boolean {
    return rank === this.myRank || this.#rowSeen[rank] === true;
  }

  // ---------------------------------------------------------------- turns

  /** Once per heartbeat: refresh this member's stability frontier (moves even with no traffic). */
  tick(nowUs: number): void {
    if (this.#wedged) return;
    let bound = this.#hlc.tick(nowUs);
    const inFlight = this.#inFlight.peek();
    if (inFlight && inFlight.timestampUs < bound) bound = inFlight.timestampUs;
    const unpersisted = this.#ownUnpersisted.peek();
    if (unpersisted && unpersisted.timestampUs < bound) bound = unpersisted.timestampUs;
    const mine = this.rows[this.myRank]!;
    const value = Math.max(mine[ShardRow.stability]!, bound - 1);
    if (value !== mine[ShardRow.stability]) {
      mine[ShardRow.stability] = value;
      this.#rowDirty = true;
      this.#rowsChanged = true;
    }
  }

  /** End of a turn: send queued payloads and nulls, deliver what is stable, push this member's row. */
  flush(nowUs: number): void {
    if (!this.#wedged) {
      this.#send(nowUs);
      if (this.#rowsChanged) this.#deliverStable();
    }
    if (this.#rowsChanged) {
      this.#rowsChanged = false;
      this.#afterRowsChanged();
    }
    if (this.#rowDirty) {
      this.#rowDirty = false;
      if (this.#peers.length > 0) {
        const mine = this.rows[this.myRank]!;
        const frame = new Uint8Array(HEADER_BYTES + mine.byteLength);
        writeHeader(frame, FrameKind.row, this.shardIndex, this.view);
        frame.set(new Uint8Array(mine.buffer, mine.byteOffset, mine.byteLength), HEADER_BYTES);
        this.#out.push(this.#peers, [frame]);
      }
    }
    if (this.#frontiersDirty && this.#held === null) {
      this.#frontiersDirty = false;
      this.#out.frontiers(this.shardIndex, this.frontiers);
    }
  }

  get frontiers(): ShardFrontiers {
    return {
      deliveredVersion: this.#deliveredVersion,
      persistedFrontier: this.#persistedFrontier,
      stabilityFrontierUs: this.#stabilityFrontierUs,
    };
  }

  /** The view asks for a new view before this shard's sequence numbers run out. */
  get wantsRollover(): boolean {
    const mine = this.rows[this.myRank]!;
    return mine[ShardRow.received + this.myRank]! * this.senders > this.#limits.seqRolloverAt;
  }

  /** Own payloads wait while this member waits for its state. */
  #payloadsToSend(): boolean {
    return this.#held === null && this.#queue.length > 0;
  }

  /**
   * Sends queued payloads, and nulls up to what the others' payloads need. A member waiting for its state
   * sends nulls only (its own payloads wait until the state is installed), so the shard keeps delivering.
   */
  #send(nowUs: number): void {
    const me = this.myRank;
    const S = this.senders;
    const mine = this.rows[me]!;
    let count = mine[ShardRow.received + me]!;
    // How far my own count must reach so every payload received so far can be delivered, plus lookahead.
    let target = 0;
    for (let r = 0; r < S; r++) {
      if (r === me) continue;
      const end = this.#lastPayloadEnd[r]!;
      if (end === 0) continue;
      const need = me < r ? end : end - 1;
      const ahead = Math.min(this.#payloadsArrived[r]!, this.#limits.nullLookaheadMax);
      this.#payloadsArrived[r] = 0;
      if (need + ahead > target) target = need + ahead;
    }
    if (!this.#payloadsToSend() && count >= target) return;
    const timestampUs = this.#hlc.tick(nowUs);
    // Payload frames, each at most batchBytesMax of payload bytes; nulls ride on the last one.
    do {
      const payloads: Uint8Array[] = [];
      let bytes = 0;
      while (this.#payloadsToSend()) {
        const next = this.#queue.peek()!;
        if (payloads.length > 0 && bytes + next.length > this.#limits.batchBytesMax) break;
        payloads.push(this.#queue.shift());
        bytes += next.length;
      }
      this.#queueBytes -= bytes;
      const afterPayloads = count + payloads.length;
      const nulls = !this.#payloadsToSend() && target > afterPayloads ? target - afterPayloads : 0;
      const end = afterPayloads + nulls;
      assert(end * S + me <= SEQ_MAX, `${this.name}: sequence space of view ${this.view} exhausted`);
      for (let i = 0; i < payloads.length; i++) {
        const payload = payloads[i]!;
        this.#inFlight.push({ index: count + i, payload, timestampUs });
        this.#inFlightBytes += payload.length;
      }
      this.#batches[me]!.push({ first: count, count: payloads.length, end, timestampUs, frame: null, payloads });
      if (this.#peers.length > 0) this.#out.push(this.#peers, this.#encodeBatch(count, payloads, bytes, nulls, timestampUs));
      count = end;
    } while (this.#payloadsToSend());
    mine[ShardRow.received + me] = count;
    this.#trace?.received(this.shardIndex, this.view, me, count);
    this.#rowDirty = true;
    this.#rowsChanged = true;
  }

  #encodeBatch(first: number, payloads: readonly Uint8Array[], payloadBytes: number, nulls: number, timestampUs: number): Uint8Array[] {
    const inline = this.#limits.inlinePayloadBytesMax;
    let inlineBytes = 0;
    for (const p of payloads) if (p.length <= inline) inlineBytes += p.length;
    const headBytes = DATA_HEADER_BYTES + 4 * payloads.length;
    const buf = Buffer.allocUnsafe(headBytes + inlineBytes);
    writeHeader(buf, FrameKind.data, this.shardIndex, this.view);
    writeU16(buf, HEADER_BYTES, this.myRank);
    writeU16(buf, HEADER_BYTES + 2, 0);
    writeU32(buf, HEADER_BYTES + 4, first);
    writeU32(buf, HEADER_BYTES + 8, payloads.length);
    writeU32(buf, HEADER_BYTES + 12, nulls);
    writeU53(buf, HEADER_BYTES + 16, timestampUs);
    const parts: Uint8Array[] = [];
    let partStart = 0;
    let at = headBytes;
    for (let i = 0; i < payloads.length; i++) {
      const p = payloads[i]!;
      writeU32(buf, DATA_HEADER_BYTES + 4 * i, p.length);
      if (p.length <= inline) {
        buf.set(p, at);
        at += p.length;
      } else {
        if (at > partStart) parts.push(buf.subarray(partStart, at));
        parts.push(p);
        partStart = at;
      }
    }
    if (at > partStart || parts.length === 0) parts.push(buf.subarray(partStart, at));
    assert(at === buf.length && headBytes + inlineBytes <= DATA_HEADER_BYTES + 4 * payloads.length + payloadBytes, 'batch encoding size mismatch');
    return parts;
  }

  /** min over members of their in-order prefix (seqEnd). */
  #stableEnd(): number {
    const S = this.senders;
    let stable = Infinity;
    for (let m = 0; m < S; m++) {
      const row = this.rows[m]!;
      for (let r = 0; r < S; r++) {
        const end = row[ShardRow.received + r]! * S + r;
        if (end < stable) stable = end;
      }
    }
    return stable;
  }

  #deliverStable(): void {
    if (this.holdFull) return;
    const stable = this.#stableEnd();
    if (stable > this.#deliveredEnd) this.#deliverRange(stable, null);
  }

  /**
   * Deliver every seq in [deliveredEnd, end) whose index is below limit[sender] (all of them when limit
   * is null), in seq order.
   */
  #deliverRange(end: number, limit: readonly number[] | null): void {
    const S = this.senders;
    let s = this.#deliveredEnd;
    let r = s % S;
    let i = (s - r) / S;
    let out: Delivered[] = [];
    let ts = this.#lastTimestampUs;
    let lastPayloadSeq = -1;
    while (s < end) {
      if (limit === null || i < limit[r]!) {
        const q = this.#batches[r]!;
        const b = q.peek();
        // (The message is built only on failure: this runs once per delivered message.)
        if (b === undefined || i < b.first || i >= b.end) assert(false, `${this.name}: seq ${s} (rank ${r} index ${i}) not received`);
        const pos = i - b.first;
        if (pos < b.count) {
          let payload: Uint8Array;
          if (b.payloads !== null) {
            payload = b.payloads[pos]!;
          } else {
            const len = readU32(b.frame!, DATA_HEADER_BYTES + 4 * pos);
            const off = this.#cursorBytes[r]!;
            payload = b.frame!.subarray(off, off + len);
            this.#cursorBytes[r] = off + len;
            this.#pendingPayloads[r]!--;
          }
          if (b.timestampUs > ts) ts = b.timestampUs;
          out.push({ version: this.#versionBase + s, timestampUs: this.#held === null ? ts : b.timestampUs, sender: this.members[r]!, payload });
          lastPayloadSeq = s;
        }
        if (i + 1 === b.end) {
          q.shift();
          const nextBatch = q.peek();
          if (nextBatch !== undefined && nextBatch.frame !== null) this.#cursorBytes[r] = DATA_HEADER_BYTES + 4 * nextBatch.count;
        }
      }
      s++;
      r++;
      if (r === S) {
        r = 0;
        i++;
      }
    }
    this.#deliveredEnd = end;
    const ownBelowEnd = end > this.myRank ? Math.floor((end - this.myRank - 1) / S) + 1 : 0;
    this.#ownDelivered = limit === null ? ownBelowEnd : Math.min(ownBelowEnd, limit[this.myRank]!);
    this.#deliveredVersion = Math.max(this.#deliveredVersion, this.#versionBase + end - 1);
    const mine = this.rows[this.myRank]!;
    mine[ShardRow.delivered] = end;
    this.#rowDirty = true;
    this.#frontiersDirty = true;
    if (out.length === 0) return;
    this.#trace?.delivered(this.shardIndex, this.view, out, limit === null ? 'stable' : 'trim');
    this.#lastTimestampUs = Math.max(this.#lastTimestampUs, ts);
    this.#lastPayloadVersion = Math.max(this.#lastPayloadVersion, this.#versionBase + lastPayloadSeq);
    // delivered in the protocol's sense, but an installed state transfer already holds them
    if (out[0]!.version <= this.#installedUpTo) out = out.filter((d) => d.version > this.#installedUpTo);
    if (out.length === 0) return;
    // Own payloads delivered: remember them until persisted everywhere (stability frontier).
    for (const d of out) {
      if (d.sender === this.members[this.myRank]) this.#ownUnpersisted.push({ version: d.version, timestampUs: d.timestampUs });
    }
    if (this.#held !== null) {
      for (const d of out) {
        this.#held.push(d);
        this.#heldBytes += d.payload.length;
      }
    } else {
      this.#out.deliver(this.shardIndex, out);
    }
  }

  #afterRowsChanged(): void {
    const S = this.senders;
    const me = this.myRank;
    // Window: own indexes delivered at every member.
    let minDelivered = Infinity;
    let minPersisted = Infinity;
    let minStability = Infinity;
    for (let m = 0; m < S; m++) {
      const row = this.rows[m]!;
      if (row[ShardRow.delivered]! < minDelivered) minDelivered = row[ShardRow.delivered]!;
      // A member waiting for its state counts too, though it persists nothing before its copy is installed:
      // if every complete copy failed meanwhile, the shard could go on from a former holder's shorter
      // history, and a write acknowledged as persisted would be lost (the simulation finds such runs).
      if (row[ShardRow.persisted]! < minPersisted) minPersisted = row[ShardRow.persisted]!;
      if (row[ShardRow.stability]! < minStability) minStability = row[ShardRow.stability]!;
    }
    let freed = false;
    // (After a ragged trim every row says delivered = the trim's end; own payloads past my trim are not
    // delivered anywhere and stay for carry().)
    while (this.#inFlight.length > 0 && this.#inFlight.peek()!.index < this.#ownDelivered && this.#inFlight.peek()!.index * S + me < minDelivered) {
      this.#inFlightBytes -= this.#inFlight.shift().payload.length;
      freed = true;
    }
    if (minPersisted > this.#persistedFrontier) {
      assert(minPersisted <= this.#deliveredVersion || this.#held !== null, `${this.name}: persisted frontier ${minPersisted} beyond delivered ${this.#deliveredVersion}`);
      this.#persistedFrontier = minPersisted;
      this.#frontiersDirty = true;
      while (this.#ownUnpersisted.length > 0 && this.#ownUnpersisted.peek()!.version <= minPersisted) this.#ownUnpersisted.shift();
    }
    if (!this.#wedged && minStability > this.#stabilityFrontierUs) {
      this.#stabilityFrontierUs = minStability;
      this.#frontiersDirty = true;
    }
    if (freed && this.#refused) {
      this.#refused = false;
      this.#out.writable(this.shardIndex);
    }
  }

  // ---------------------------------------------------------------- view change

  /** Stop sending, receiving and delivering: the received counts in this member's row are final. */
  wedge(): void {
    if (this.#wedged) return;
    this.#wedged = true;
    this.#rowDirty = true;
  }

  get wedged(): boolean {
    return this.#wedged;
  }

  /** A snapshot for diagnostics (tests, logs). */
  describe(): Record<string, unknown> {
    return {
      name: this.name,
      view: this.view,
      wedged: this.#wedged,
      deliveredEnd: this.#deliveredEnd,
      queued: this.#queue.length,
      inFlight: this.#inFlight.length,
      held: this.#held?.length ?? null,
      rows: this.rows.map((r) => Array.from(r)),
    };
  }

  /** This member's received counts per sender rank (final once wedged). */
  receivedCounts(): number[] {
    const mine = this.rows[this.myRank]!;
    return this.members.map((_, r) => mine[ShardRow.received + r]!);
  }

  /** Whether this member holds every index below trim[r] of every sender r. */
  hasAll(trim: readonly number[]): boolean {
    const mine = this.rows[this.myRank]!;
    return trim.every((t, r) => mine[ShardRow.received + r]! >= t);
  }

  /** Deliver exactly up to the ragged trim (per sender, indexes below trim[r]). */
  deliverTrim(trim: readonly number[]): void {
    assert(this.#wedged, `${this.name}: trim delivery in an unwedged view`);
    assert(trim.length === this.senders && this.hasAll(trim), `${this.name}: trim ${trim.join(',')} beyond what was received`);
    // The smallest seq past every sender's last trimmed index.
    let end = this.#deliveredEnd;
    trim.forEach((t, r) => {
      if (t > 0) end = Math.max(end, (t - 1) * this.senders + r + 1);
    });
    assert(end >= this.#deliveredEnd, 'trim below delivered');
    if (end > this.#deliveredEnd) this.#deliverRange(end, trim);
    if (this.#held === null && this.#frontiersDirty) {
      this.#frontiersDirty = false;
      this.#out.frontiers(this.shardIndex, this.frontiers);
    }
  }

  /** Version of the last payload delivered in this shard (any view), -1 if none. */
  get lastPayloadVersion(): number {
    return this.#lastPayloadVersion;
  }

  get deliveredVersion(): number {
    return this.#deliveredVersion;
  }

  get lastTimestampUs(): number {
    return this.#lastTimestampUs;
  }

  /** What the next view's instance of this shard starts from (call after deliverTrim). */
  carry(): ShardCarry {
    const deliveredOwn = this.#ownDelivered;
    const resend: Uint8Array[] = [];
    for (let i = 0; i < this.#inFlight.length; i++) {
      const e = this.#inFlight.at(i);
      if (e.index >= deliveredOwn) resend.push(e.payload);
    }
    for (let i = 0; i < this.#queue.length; i++) resend.push(this.#queue.at(i));
    return {
      lastTimestampUs: this.#lastTimestampUs,
      deliveredVersion: this.#deliveredVersion,
      lastPayloadVersion: this.#lastPayloadVersion,
      persistedVersion: this.persistedVersion,
      persistedFrontier: this.#persistedFrontier,
      stabilityFrontierUs: this.#stabilityFrontierUs,
      ownUnpersisted: this.#ownUnpersisted.toArray(),
      resend,
      held: this.#held,
      heldBase: this.#held !== null ? this.#heldBase : null,
    };
  }

  /** Own payloads that will never be delivered (this member leaves the shard). */
  undelivered(): Uint8Array[] {
    return [...this.carry().resend];
  }

  // ---------------------------------------------------------------- state transfer (joiner side)

  get awaitingState(): boolean {
    return this.#held !== null;
  }

  /** The end of this member's own copy (before it started waiting, while it waits). */
  get localCopy(): { readonly lastPayloadVersion: number; readonly lastTimestampUs: number } {
    return this.#held !== null && this.#heldBase !== null ? this.#heldBase : { lastPayloadVersion: this.#lastPayloadVersion, lastTimestampUs: this.#lastTimestampUs };
  }

  get heldBytes(): number {
    return this.#heldBytes;
  }

  /** Holding joinerQueueBytesMax or more: no stable delivery until the state is installed (see MulticastLimits). */
  get holdFull(): boolean {
    return this.#held !== null && this.#heldBytes >= this.#limits.joinerQueueBytesMax;
  }

  /** No transfer will come: this member's own copy (as it was before waiting) is the state. */
  releaseFromLocal(): void {
    const base = this.#heldBase;
    assert(this.#held !== null && base !== null, `${this.name}: local release without a hold`);
    this.releaseHeld(base.deliveredVersion, base.lastPayloadVersion, base.lastTimestampUs);
  }

  /**
   * The state as of `toVersion` is installed: drop held deliveries at or below it, re-time the rest from
   * the donor's running timestamp maximum, and hand them over.
   */
  releaseHeld(toVersion: number, lastPayloadVersion: number, donorLastTimestampUs: number): void {
    assert(this.#held !== null, `${this.name}: release without held deliveries`);
    const held = this.#held;
    this.#held = null;
    this.#heldBytes = 0;
    this.rows[this.myRank]![ShardRow.awaiting] = 0;
    this.#rowDirty = true;
    let ts = donorLastTimestampUs;
    const out: Delivered[] = [];
    for (const d of held) {
      if (d.version <= toVersion) continue;
      if (d.timestampUs > ts) ts = d.timestampUs;
      out.push({ version: d.version, timestampUs: ts, sender: d.sender, payload: d.payload });
    }
    this.#hlc.observe(ts);
    if (out.length > 0) {
      this.#lastTimestampUs = Math.max(this.#lastTimestampUs, ts);
      this.#out.deliver(this.shardIndex, out);
    } else if (donorLastTimestampUs > this.#lastTimestampUs) {
      this.#lastTimestampUs = donorLastTimestampUs;
    }
    if (toVersion > this.#deliveredVersion) this.#deliveredVersion = toVersion;
    if (toVersion > this.#installedUpTo) this.#installedUpTo = toVersion;
    if (lastPayloadVersion > this.#lastPayloadVersion) this.#lastPayloadVersion = lastPayloadVersion;
    for (const d of out) if (d.version > this.#lastPayloadVersion) this.#lastPayloadVersion = d.version;
    this.#frontiersDirty = true;
    this.#rowsChanged = true;
  }
}

/** Split a version into (view, seq) without assertions, for logs. */
export function describeVersion(v: number): string {
  return v < 0 ? 'none' : `${Math.floor(v / TWO_32)}:${v % TWO_32}`;
}
