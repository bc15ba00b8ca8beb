/**
 * A sender's multicast ring in registered memory, replicated at every receiver (under the same region id,
 * or under an id each receiver chose and told the sender):
 * the sender appends records locally, pushes the new byte range to every receiver with one-sided writes
 * (batched: everything appended since the last flush goes out as at most two range writes, large records in
 * blocks of blockSizeBytes), then pushes the doorbell. Receivers read records in place (no copy) and, once
 * done with them, write their consumed position back into the sender's ack words.
 *
 * Region layout (same offsets everywhere):
 *   [0, 8)    doorbell: stream position (bytes) committed by the sender     written by the sender
 *   [8, 16)   messages committed                                            written by the sender
 *   [64 + 8*slot, +8)  ack of receiver `slot`: stream position consumed     written by that receiver
 *   [dataOffset, +capacityBytes)  records
 * Record at stream position p, starting at data index p % capacity (16-aligned, never straddling the end):
 *   [len u32][kind u32: 1 message, 2 pad][seq u64][payload, zero-padded to 8][seq u64 trailer], size
 *   rounded up to 16. A pad's len says how many bytes follow its header up to the end of the data area.
 *
 * Invariants:
 * - The sender never overwrites bytes a current receiver has not acked: writePos - min(acks) <= capacity.
 * - The doorbell is written after the data it covers, by the same endpoint to the same peer, so (writes to
 *   one peer being applied in order, see native/src/fabric.h) a receiver never sees a doorbell before its
 *   data. Each record also carries its seq at both ends; a mismatch is counted and re-checked, never accepted.
 * - Message seqs are 1, 2, 3, ... per ring; receivers see every message exactly once, in order.
 */
import { assert } from '../../assert.js';
import type { FabricEndpoint } from './endpoint.js';

const HEADER_BYTES = 16;
const TRAILER_BYTES = 8;
const KIND_MESSAGE = 1;
const KIND_PAD = 2;
const ACK_BASE = 64;

export interface RingGeometry {
  /** This member's region id for its copy of the ring (by default the same at every member). */
  regionId: number;
  /** Bytes of record space (a multiple of 16, at least 64). */
  capacityBytes: number;
  /** Ack slots: receivers are numbered 0..ackSlots-1 (e.g. by rank in the group). */
  ackSlots: number;
}

export interface RingMessage {
  seq: number;
  /** The payload in place in registered memory: valid until release() passes `end`. */
  payload: Uint8Array;
  /** Stream position just after this record: pass it to release(). */
  end: number;
}

function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

export function recordBytes(payloadBytes: number): number {
  return align(HEADER_BYTES + align(payloadBytes, 8) + TRAILER_BYTES, 16);
}

function dataOffset(g: RingGeometry): number {
  return align(ACK_BASE + 8 * g.ackSlots, 64);
}

export function ringRegionBytes(g: RingGeometry): number {
  return dataOffset(g) + g.capacityBytes;
}

/** Largest payload a ring of this geometry carries. */
export function ringMaxPayloadBytes(g: RingGeometry): number {
  return g.capacityBytes - HEADER_BYTES - TRAILER_BYTES;
}

function checkGeometry(g: RingGeometry): void {
  assert(g.capacityBytes >= 64 && g.capacityBytes % 16 === 0, `ring capacityBytes must be a multiple of 16 and >= 64, got ${g.capacityBytes}`);
  assert(Number.isInteger(g.ackSlots) && g.ackSlots >= 1, `ring ackSlots must be >= 1, got ${g.ackSlots}`);
}

/** What both ends share: the ring's registered region (my copy) and views of it. */
abstract class RingEnd {
  readonly geometry: RingGeometry;
  protected readonly endpoint: FabricEndpoint;
  protected readonly base: number;
  protected readonly data: Uint8Array;
  protected readonly view: DataView;
  protected readonly words: BigUint64Array;

  constructor(endpoint: FabricEndpoint, geometry: RingGeometry) {
    checkGeometry(geometry);
    this.endpoint = endpoint;
    this.geometry = geometry;
    this.base = dataOffset(geometry);
    const buffer = endpoint.registerRegion(geometry.regionId, ringRegionBytes(geometry));
    this.data = new Uint8Array(buffer, this.base, geometry.capacityBytes);
    this.view = new DataView(buffer, this.base, geometry.capacityBytes);
    this.words = new BigUint64Array(buffer, 0, this.base / 8);
  }

  regionBlob(): Uint8Array {
    return this.endpoint.regionBlob(this.geometry.regionId);
  }
}

/** The sending side: owns the ring, appends, flushes, tracks acks. */
export class RingSender extends RingEnd {
  readonly maxPayloadBytes: number;
  private readonly receivers = new Map<number, { slot: number; watchId: number; remoteRegionId: number }>();
  /** Receivers whose copy has my region id (one put reaches them all), and the others. */
  private sameIdPeers = new Uint32Array(0);
  private otherIdPeers: Array<{ peer: number; remoteRegionId: number }> = [];
  private writePos = 0;
  private flushedPos = 0;
  private ackedPos = 0;
  private seq = 0;
  private blocked = false;
  private writableHandler: (() => void) | undefined;
  private pending: { idx: number; length: number; size: number } | undefined;

  constructor(endpoint: FabricEndpoint, geometry: RingGeometry) {
    super(endpoint, geometry);
    this.maxPayloadBytes = ringMaxPayloadBytes(geometry);
  }

  /**
   * Adds a receiver: its copy of the ring is its region `remoteRegionId` (default: the same id as mine),
   * whose blob must have been added with addRemoteRegion.
   */
  addReceiver(peer: number, slot: number, remoteRegionId = this.geometry.regionId): void {
    assert(slot >= 0 && slot < this.geometry.ackSlots, `ack slot ${slot} outside 0..${this.geometry.ackSlots - 1}`);
    assert(!this.receivers.has(peer), `receiver ${peer} added twice`);
    // Receivers join a fresh ring only: a later member gets a new ring in its new view.
    assert(this.writePos === 0, 'addReceiver after messages were appended');
    const watchId = this.endpoint.watch(this.geometry.regionId, ACK_BASE + 8 * slot, () => this.onAck());
    this.receivers.set(peer, { slot, watchId, remoteRegionId });
    this.regroup();
    this.recomputeAcked();
  }

  /** Stops waiting for a receiver's acks (it failed or left). */
  removeReceiver(peer: number): void {
    const r = this.receivers.get(peer);
    if (!r) return;
    this.endpoint.unwatch(r.watchId);
    this.receivers.delete(peer);
    this.regroup();
    this.onAck();
  }

  onWritable(handler: () => void): void {
    this.writableHandler = handler;
  }

  /** Bytes appended but not yet acked by every receiver. */
  get usedBytes(): number {
    return this.writePos - this.ackedPos;
  }

  get messagesSent(): number {
    return this.seq;
  }

  /**
   * Reserves room for a payload of `length` bytes and returns it in place (fill it, then commit()), or
   * undefined when the ring is full (onWritable fires once acks free room).
   */
  reserve(length: number): Uint8Array | undefined {
    assert(length >= 0 && length <= this.maxPayloadBytes, `payload of ${length} bytes exceeds the ring's ${this.maxPayloadBytes} (capacityBytes - 24)`);
    assert(this.pending === undefined, 'reserve() twice without commit()');
    const cap = this.geometry.capacityBytes;
    const size = recordBytes(length);
    let idx = this.writePos % cap;
    if (cap - idx < size) {
      // Wrap: a pad fills the tail of the data area, the record starts at 0.
      const pad = cap - idx;
      if (!this.room(pad)) return undefined;
      this.view.setUint32(idx, pad - HEADER_BYTES, true);
      this.view.setUint32(idx + 4, KIND_PAD, true);
      this.view.setBigUint64(idx + 8, 0n, true);
      this.writePos += pad;
      idx = 0;
    }
    if (!this.room(size)) return undefined;
    this.pending = { idx, length, size };
    return this.data.subarray(idx + HEADER_BYTES, idx + HEADER_BYTES + length);
  }

  /** Appends the reserved record (it goes out with the next flush()). */
  commit(): number {
    const p = this.pending;
    assert(p !== undefined, 'commit() without reserve()');
    this.pending = undefined;
    const seq = ++this.seq;
    this.view.setUint32(p.idx, p.length, true);
    this.view.setUint32(p.idx + 4, KIND_MESSAGE, true);
    this.view.setBigUint64(p.idx + 8, BigInt(seq), true);
    const padStart = p.idx + HEADER_BYTES + p.length;
    const trailer = p.idx + p.size - TRAILER_BYTES;
    if (trailer > padStart) this.data.fill(0, padStart, trailer);
    this.view.setBigUint64(trailer, BigInt(seq), true);
    this.writePos += p.size;
    return seq;
  }

  /** Copies a payload in; false (nothing appended) when the ring is full. */
  send(payload: Uint8Array): boolean {
    const slot = this.reserve(payload.length);
    if (!slot) return false;
    slot.set(payload);
    this.commit();
    return true;
  }

  /** Positions, for diagnostics and metrics. */
  state(): { writePos: number; flushedPos: number; ackedPos: number; messages: number; blocked: boolean } {
    return { writePos: this.writePos, flushedPos: this.flushedPos, ackedPos: this.ackedPos, messages: this.seq, blocked: this.blocked };
  }

  /** Pushes everything appended since the last flush to every receiver, then the doorbell. */
  flush(): void {
    if (this.flushedPos === this.writePos) return;
    const cap = this.geometry.capacityBytes;
    const start = this.flushedPos % cap;
    const length = this.writePos - this.flushedPos;
    const first = Math.min(length, cap - start);
    this.push(this.base + start, first);
    if (length > first) this.push(this.base, length - first);
    this.words[0] = BigInt(this.writePos);
    this.words[1] = BigInt(this.seq);
    this.push(0, 16);
    this.flushedPos = this.writePos;
  }

  /** Writes [offset, offset+length) of my copy into every receiver's copy. */
  private push(offset: number, length: number): void {
    if (this.sameIdPeers.length > 0) this.endpoint.put(this.geometry.regionId, offset, length, this.sameIdPeers);
    for (const { peer, remoteRegionId } of this.otherIdPeers) {
      this.endpoint.write(peer, remoteRegionId, offset, this.geometry.regionId, offset, length);
    }
  }

  private regroup(): void {
    const same: number[] = [];
    this.otherIdPeers = [];
    for (const [peer, r] of this.receivers) {
      if (r.remoteRegionId === this.geometry.regionId) same.push(peer);
      else this.otherIdPeers.push({ peer, remoteRegionId: r.remoteRegionId });
    }
    this.sameIdPeers = Uint32Array.from(same);
  }

  /** Ends the ring: ack watches removed, the region retired. */
  retire(): void {
    for (const peer of [...this.receivers.keys()]) this.removeReceiver(peer);
    this.endpoint.retireRegion(this.geometry.regionId);
  }

  /** True if `bytes` more fit; re-reads the ack words before saying no (and then arms onWritable). */
  private room(bytes: number): boolean {
    const cap = this.geometry.capacityBytes;
    if (this.usedBytes + bytes <= cap) return true;
    this.recomputeAcked();
    if (this.usedBytes + bytes <= cap) return true;
    this.blocked = true;
    return false;
  }

  private recomputeAcked(): void {
    let min = this.writePos;
    for (const { slot } of this.receivers.values()) {
      const acked = Number(Atomics.load(this.words, ACK_BASE / 8 + slot));
      if (acked < min) min = acked;
    }
    assert(min >= this.ackedPos, `acks moved backwards (${min} < ${this.ackedPos})`);
    assert(min <= this.writePos, `ack ${min} beyond what was written (${this.writePos})`);
    this.ackedPos = min;
  }

  private onAck(): void {
    this.recomputeAcked();
    if (this.blocked && this.usedBytes < this.geometry.capacityBytes) {
      this.blocked = false;
      this.writableHandler?.();
    }
  }
}

/** The receiving side of one sender's ring: reads records in place, acks consumed positions. */
export class RingReceiver extends RingEnd {
  readonly sender: number;
  private readonly slot: number;
  private readonly senderIds: Uint32Array;
  private senderRegionId: number | undefined;
  private readPos = 0;
  private releasedPos = 0;
  private nextSeq = 1;
  private readonly pads: Array<{ start: number; end: number }> = [];
  private watchId: number | undefined;
  /** Records whose seq guards did not match when the doorbell said they were there (re-checked later). */
  guardMisses = 0;

  /**
   * `senderRegionId`: the sender's id for its copy of the ring (default: the same as mine); if it is not
   * known yet (it arrives with the sender's blobs), pass null and call bindSender() before release().
   */
  constructor(endpoint: FabricEndpoint, geometry: RingGeometry, sender: number, mySlot: number, senderRegionId: number | null = geometry.regionId) {
    assert(mySlot >= 0 && mySlot < geometry.ackSlots, `ack slot ${mySlot} outside 0..${geometry.ackSlots - 1}`);
    super(endpoint, geometry);
    this.sender = sender;
    this.slot = mySlot;
    this.senderIds = Uint32Array.of(sender);
    this.senderRegionId = senderRegionId ?? undefined;
  }

  /** Where acks go: the sender's region id for its copy of this ring. */
  bindSender(senderRegionId: number): void {
    assert(this.senderRegionId === undefined || this.senderRegionId === senderRegionId, 'ring receiver bound to another sender region');
    this.senderRegionId = senderRegionId;
  }

  /** Calls `handler` on the JS thread once right away, then whenever the doorbell moves. */
  onReadable(handler: () => void): void {
    assert(this.watchId === undefined, 'onReadable set twice');
    this.watchId = this.endpoint.watch(this.geometry.regionId, 0, handler);
  }

  /** Stream position the sender's doorbell shows. */
  get committedPos(): number {
    return Number(Atomics.load(this.words, 0));
  }

  /**
   * Messages visible since the last poll, in order, in place. Stops early at a record whose guards do not
   * match yet (guardMisses counts it; poll again later) or after `max` messages.
   */
  poll(max = Number.POSITIVE_INFINITY): RingMessage[] {
    const out: RingMessage[] = [];
    const cap = this.geometry.capacityBytes;
    const committed = this.committedPos;
    while (this.readPos < committed && out.length < max) {
      const idx = this.readPos % cap;
      const length = this.view.getUint32(idx, true);
      const kind = this.view.getUint32(idx + 4, true);
      if (kind === KIND_PAD) {
        const end = this.readPos + HEADER_BYTES + length;
        assert(end % cap === 0, `ring pad at ${this.readPos} does not end at the wrap`);
        if (this.releasedPos === this.readPos) this.ack(end);
        else this.pads.push({ start: this.readPos, end });
        this.readPos = end;
        continue;
      }
      const size = recordBytes(length);
      const seq = Number(this.view.getBigUint64(idx + 8, true));
      if (kind !== KIND_MESSAGE || seq !== this.nextSeq || idx + size > cap ||
          Number(this.view.getBigUint64(idx + size - TRAILER_BYTES, true)) !== seq) {
        this.guardMisses++;
        break;
      }
      this.nextSeq++;
      this.readPos += size;
      out.push({ seq, payload: this.data.subarray(idx + HEADER_BYTES, idx + HEADER_BYTES + length), end: this.readPos });
    }
    return out;
  }

  /** Positions, for diagnostics and metrics. */
  state(): { committedPos: number; readPos: number; releasedPos: number; nextSeq: number; guardMisses: number } {
    return { committedPos: this.committedPos, readPos: this.readPos, releasedPos: this.releasedPos, nextSeq: this.nextSeq, guardMisses: this.guardMisses };
  }

  /** Hands back everything up to stream position `end` (a message's end): the sender may reuse it. */
  release(end: number): void {
    assert(end <= this.readPos && end >= this.releasedPos, `release(${end}) outside ${this.releasedPos}..${this.readPos}`);
    let to = end;
    while (this.pads.length > 0 && this.pads[0]!.start <= to) to = Math.max(to, this.pads.shift()!.end);
    this.ack(to);
  }

  /** Ends this replica: watch removed, region retired. */
  retire(): void {
    if (this.watchId !== undefined) this.endpoint.unwatch(this.watchId);
    this.watchId = undefined;
    this.endpoint.retireRegion(this.geometry.regionId);
  }

  private ack(to: number): void {
    if (to === this.releasedPos) return;
    this.releasedPos = to;
    Atomics.store(this.words, ACK_BASE / 8 + this.slot, BigInt(to));
    const offset = ACK_BASE + 8 * this.slot;
    assert(this.senderRegionId !== undefined, 'ring receiver acks before bindSender()');
    if (this.senderRegionId === this.geometry.regionId) this.endpoint.put(this.geometry.regionId, offset, 8, this.senderIds);
    else this.endpoint.write(this.sender, this.senderRegionId, offset, this.geometry.regionId, offset, 8);
  }
}
