/**
 * The fabric transport driver: the TransportDriver contract (driver.ts) over the native data plane.
 *
 * Links, liveness and the exchange of addresses ride on a control driver (the TCP driver): when its link to
 * a peer comes up, each side registers two rings for that peer (its own outgoing ring, and its copy of the
 * peer's ring to it) and sends the peer its endpoint and ring blobs over the control link. Once a member
 * has the peer's blobs its fabric link is up: frames pushed to the peer are appended to the outgoing ring
 * and, at flush(), written into the peer's copy with one-sided writes (everything appended in the turn as
 * at most two range writes, then the doorbell). The peer's progress thread notices the doorbell, and the
 * frames are handed to the core in order.
 *
 * Invariants:
 * - Per peer, frames leave in push order and arrive whole, in that order (the ring keeps record order; a
 *   frame larger than a fragment is split into fragments that are reassembled before delivery).
 * - linkUp(peer) only after the peer's blobs were added; linkDown(peer) at most once per linkUp, when the
 *   control link breaks or the data plane reports the peer dead (a failed or overdue write, or a
 *   co-located process that exited). Nothing from a link is delivered after its linkDown.
 * - Frames are copied out of registered memory before the core sees them: the contract lets the core keep
 *   subarrays of a frame, and ring space is reused once released.
 * - A link's regions are retired when the link ends: their address ranges stay reserved (native/src/
 *   fabric.h), so a late write from the old peer incarnation cannot land in live memory.
 * - Frames waiting for a link (not up yet, or ring full) are bounded by pendingBytesMax; past it they
 *   are dropped and linkDown is reported, so the core never sees a stream with a gap.
 */
import { assert } from '../../assert.js';
import type { Logger } from '../../log.js';
import type { DriverListener, MemberAddress, TransportDriver } from '../driver.js';
import { regionIdOfBlob } from './addon.js';
import type { FabricConfig } from './config.js';
import { FabricEndpoint } from './endpoint.js';
import { RingReceiver, RingSender, type RingGeometry } from './message-ring.js';

export interface FabricDriverConfig extends FabricConfig {
  /** Record space of each link's ring, per direction (registered at both ends). */
  ringCapacityBytes: number;
  /** Largest fragment of a frame in the ring; bigger frames are split (and reassembled before delivery). */
  fragmentBytesMax: number;
  /** Frame bytes kept for one peer while its link is not up or its ring is full. */
  pendingBytesMax: number;
}

export interface FabricDriverOptions {
  selfId: number;
  config: FabricDriverConfig;
  /** Carries links, liveness and the blob exchange (the TCP driver). Its frames are this driver's own. */
  control: TransportDriver;
  log?: Logger;
}

/** Fragment header: one byte; bit 0 set on the last fragment of a frame. */
const LAST_FRAGMENT = 1;
const HELLO_VERSION = 1;

interface Hello {
  v: number;
  /** Endpoint blob, and the blobs of the sender's outgoing ring and of its copy of my ring (base64). */
  endpoint: string;
  tx: string;
  rx: string;
  capacityBytes: number;
}

interface PendingFrame {
  parts: readonly Uint8Array[];
  bytes: number;
  /** Bytes of it already appended to the ring (a large frame can be part-way in). */
  offset: number;
}

interface Link {
  peer: number;
  /** From the control link; undefined until it came up. */
  incarnation: number | undefined;
  state: 'waiting' | 'connecting' | 'up' | 'failed';
  sender: RingSender | undefined;
  receiver: RingReceiver | undefined;
  pending: PendingFrame[];
  pendingBytes: number;
  /** Appended since the last flush. */
  dirty: boolean;
  /** The peer's endpoint is in the fabric's address table. */
  peerAdded: boolean;
  /** Fragments of the frame being received. */
  fragments: Uint8Array[];
  /** The peer's hello, if it came before the control link's linkUp. */
  earlyHello: Uint8Array | undefined;
}

export class FabricDriver implements TransportDriver {
  readonly selfId: number;
  private readonly config: FabricDriverConfig;
  private readonly control: TransportDriver;
  private readonly log: Logger | undefined;
  private endpoint: FabricEndpoint | undefined;
  private listener: DriverListener | undefined;
  private readonly links = new Map<number, Link>();
  private nextRegionId = 1;
  private closed = false;

  constructor(options: FabricDriverOptions) {
    const c = options.config;
    assert(c.fragmentBytesMax >= 64 && c.fragmentBytesMax + 32 <= c.ringCapacityBytes, `fragmentBytesMax ${c.fragmentBytesMax} must be >= 64 and fit the ring (${c.ringCapacityBytes} bytes)`);
    this.selfId = options.selfId;
    this.config = c;
    this.control = options.control;
    this.log = options.log;
  }

  async start(listener: DriverListener): Promise<void> {
    assert(!this.listener, 'fabric driver started twice');
    this.listener = listener;
    this.endpoint = FabricEndpoint.open(this.config, this.log);
    this.endpoint.onPeerFailed((peer, reason) => this.dataPlaneFailed(peer, reason));
    await this.control.start({
      frame: (from, frame) => this.onControlFrame(from, frame),
      linkUp: (peer, incarnation) => this.onControlUp(peer, incarnation),
      linkDown: (peer) => this.onControlDown(peer),
    });
  }

  setPeers(peers: readonly MemberAddress[]): void {
    const keep = new Set(peers.map((p) => p.id));
    for (const peer of [...this.links.keys()]) if (!keep.has(peer)) this.endLink(peer, false);
    this.control.setPeers(peers);
  }

  push(to: readonly number[], parts: readonly Uint8Array[]): void {
    if (this.closed) return;
    let bytes = 0;
    for (const p of parts) bytes += p.length;
    for (const peer of to) {
      assert(peer !== this.selfId, 'push to self');
      const link = this.linkOf(peer);
      if (link.state === 'failed') continue; // down until the control link cycles; the core was told
      if (link.pendingBytes + bytes > this.config.pendingBytesMax) {
        // Dropping frames is a gap in the stream: the core hears linkDown even if the link never came up.
        this.fail(link, `more than pendingBytesMax (${this.config.pendingBytesMax}) bytes waiting`, true);
        continue;
      }
      link.pending.push({ parts, bytes, offset: 0 });
      link.pendingBytes += bytes;
      if (link.state === 'up') this.drain(link);
    }
  }

  flush(): void {
    for (const link of this.links.values()) {
      if (link.dirty && link.sender) {
        link.sender.flush();
        link.dirty = false;
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.control.close();
    for (const peer of [...this.links.keys()]) this.endLink(peer, false);
    this.endpoint?.close();
  }

  /** Native counters, for metrics. */
  stats(): ReturnType<FabricEndpoint['stats']> | undefined {
    return this.endpoint?.stats();
  }

  private linkOf(peer: number): Link {
    let link = this.links.get(peer);
    if (!link) {
      link = { peer, incarnation: undefined, state: 'waiting', sender: undefined, receiver: undefined, pending: [], pendingBytes: 0, dirty: false, peerAdded: false, fragments: [], earlyHello: undefined };
      this.links.set(peer, link);
    }
    return link;
  }

  // ---- link set-up over the control driver ----------------------------------------------------------

  private onControlUp(peer: number, incarnation: number): void {
    if (this.closed) return;
    const old = this.links.get(peer);
    if (old && old.state !== 'waiting') this.endLink(peer, old.state === 'up');
    const link = this.linkOf(peer);
    link.incarnation = incarnation;
    link.state = 'connecting';
    const ep = this.endpoint!;
    const geometry = (regionId: number): RingGeometry => ({ regionId, capacityBytes: this.config.ringCapacityBytes, ackSlots: 1 });
    link.sender = new RingSender(ep, geometry(this.nextRegionId++));
    link.receiver = new RingReceiver(ep, geometry(this.nextRegionId++), peer, 0, null);
    const hello: Hello = {
      v: HELLO_VERSION,
      endpoint: Buffer.from(ep.endpointBlob()).toString('base64'),
      tx: Buffer.from(link.sender.regionBlob()).toString('base64'),
      rx: Buffer.from(link.receiver.regionBlob()).toString('base64'),
      capacityBytes: this.config.ringCapacityBytes,
    };
    this.control.push([peer], [Buffer.from(JSON.stringify(hello))]);
    this.control.flush();
    const early = link.earlyHello;
    link.earlyHello = undefined;
    if (early) this.onControlFrame(peer, early);
  }

  private onControlFrame(from: number, frame: Uint8Array): void {
    if (this.closed) return;
    const link = this.linkOf(from);
    if (link.state === 'waiting') {
      // The peer's hello overtook our own linkUp report: keep it for onControlUp.
      link.earlyHello = frame;
      return;
    }
    if (link.state !== 'connecting') return; // a hello for a link that already ended
    let hello: Hello;
    try {
      hello = JSON.parse(Buffer.from(frame).toString('utf8')) as Hello;
    } catch {
      this.fail(link, 'malformed fabric hello');
      return;
    }
    if (hello.v !== HELLO_VERSION || hello.capacityBytes !== this.config.ringCapacityBytes) {
      this.fail(link, `fabric hello mismatch (version ${hello.v}, ringCapacityBytes ${hello.capacityBytes} vs ${this.config.ringCapacityBytes})`);
      return;
    }
    const ep = this.endpoint!;
    const peerTx = Buffer.from(hello.tx, 'base64');
    const peerRx = Buffer.from(hello.rx, 'base64');
    try {
      ep.addPeer(from, Buffer.from(hello.endpoint, 'base64'));
      link.peerAdded = true;
      ep.addRemoteRegion(from, peerTx);
      ep.addRemoteRegion(from, peerRx);
    } catch (e) {
      this.fail(link, `fabric hello rejected: ${(e as Error).message}`);
      return;
    }
    const sender = link.sender!;
    const receiver = link.receiver!;
    sender.addReceiver(from, 0, regionIdOfBlob(peerRx));
    sender.onWritable(() => this.drain(link, true));
    receiver.bindSender(regionIdOfBlob(peerTx));
    receiver.onReadable(() => this.receive(link, receiver));
    link.state = 'up';
    this.log?.debug({ node: this.selfId, peer: from, provider: ep.provider }, 'fabric link up');
    this.listener!.linkUp(from, link.incarnation!);
    this.drain(link, true);
  }

  private onControlDown(peer: number): void {
    const link = this.links.get(peer);
    if (!link) return;
    const wasUp = link.state === 'up';
    this.endLink(peer, wasUp);
  }

  /** The data plane found the peer dead: the link is down until the control link goes down and up again. */
  private dataPlaneFailed(peer: number, reason: string): void {
    const link = this.links.get(peer);
    if (!link || link.state !== 'up') return;
    this.fail(link, reason);
  }

  private fail(link: Link, reason: string, reportAlways = false): void {
    const wasUp = link.state === 'up';
    this.log?.warn({ node: this.selfId, peer: link.peer, reason }, 'fabric link down');
    this.teardown(link);
    link.state = 'failed';
    if (wasUp || reportAlways) this.listener!.linkDown(link.peer);
  }

  private endLink(peer: number, report: boolean): void {
    const link = this.links.get(peer);
    if (!link) return;
    this.teardown(link);
    this.links.delete(peer);
    if (report) this.listener!.linkDown(peer);
  }

  /** Retires the link's rings and forgets the peer's address; frames waiting for it are dropped. */
  private teardown(link: Link): void {
    link.pending = [];
    link.pendingBytes = 0;
    link.fragments = [];
    link.dirty = false;
    link.sender?.retire();
    link.receiver?.retire();
    link.sender = undefined;
    link.receiver = undefined;
    if (this.endpoint && link.peerAdded) this.endpoint.removePeer(link.peer);
    link.peerAdded = false;
  }

  // ---- data path -------------------------------------------------------------------------------------

  /**
   * Moves waiting frames into the ring while it has room (fragmenting large ones). Inside a turn the core's
   * flush() writes them; from a ring-writable event (outside any turn) `flushNow` writes them at once.
   */
  private drain(link: Link, flushNow = false): void {
    const sender = link.sender;
    if (link.state !== 'up' || !sender) return;
    const fragmentMax = Math.min(this.config.fragmentBytesMax, sender.maxPayloadBytes - 1);
    while (link.pending.length > 0) {
      const f = link.pending[0]!;
      const n = Math.min(fragmentMax, f.bytes - f.offset);
      const slot = sender.reserve(n + 1);
      if (!slot) break; // full: onWritable calls drain again
      const last = f.offset + n === f.bytes;
      slot[0] = last ? LAST_FRAGMENT : 0;
      copyRange(f.parts, f.offset, n, slot, 1);
      sender.commit();
      f.offset += n;
      link.dirty = true;
      if (last) {
        link.pending.shift();
        link.pendingBytes -= f.bytes;
      }
    }
    if (flushNow && link.dirty) {
      sender.flush();
      link.dirty = false;
    }
  }

  private receive(link: Link, receiver: RingReceiver): void {
    const messages = receiver.poll();
    if (messages.length === 0) return;
    for (const m of messages) {
      // The link may have ended while the core handled an earlier frame: deliver nothing more from it.
      if (link.receiver !== receiver || link.state !== 'up') return;
      const last = (m.payload[0]! & LAST_FRAGMENT) !== 0;
      const chunk = m.payload.subarray(1);
      if (last && link.fragments.length === 0) {
        this.listener!.frame(link.peer, chunk.slice());
        continue;
      }
      link.fragments.push(chunk.slice());
      if (last) {
        const frame = Buffer.concat(link.fragments);
        link.fragments = [];
        this.listener!.frame(link.peer, frame);
      }
    }
    if (link.receiver === receiver) receiver.release(messages[messages.length - 1]!.end);
  }
}

/** Copies `length` bytes starting `offset` bytes into the concatenation of `parts` to `out` at `at`. */
function copyRange(parts: readonly Uint8Array[], offset: number, length: number, out: Uint8Array, at: number): void {
  let skip = offset;
  let left = length;
  for (const p of parts) {
    if (left === 0) break;
    if (skip >= p.length) {
      skip -= p.length;
      continue;
    }
    const n = Math.min(p.length - skip, left);
    out.set(p.subarray(skip, skip + n), at);
    at += n;
    left -= n;
    skip = 0;
  }
  assert(left === 0, 'frame shorter than its byte count');
}
