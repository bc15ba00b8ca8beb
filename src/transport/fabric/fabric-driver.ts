/**
 * The fabric transport driver: the TransportDriver contract (driver.ts) over the native data plane.
 *
 * Links, liveness and the exchange of addresses ride on a control driver (the TCP driver): when its link to
 * a peer comes up, each side registers two rings for that peer (its own outgoing ring, and its copy of the
 * peer's ring to it) and sends the peer its endpoint and ring blobs over the control link (a "hello").
 * Once a member has the peer's blobs its fabric link is up: frames pushed to the peer are appended to the
 * outgoing ring and, at flush(), written into the peer's copy with one-sided writes (everything appended in
 * the turn as at most two range writes, then the doorbell). The peer's progress thread notices the
 * doorbell, and the frames are handed to the core in order.
 *
 * Generations. Each set of rings belongs to a generation, a number that only grows (wall-clock based, so a
 * restarted peer's numbers are larger than its previous incarnation's). A hello carries its generation:
 * - a hello older than my rings is stale and ignored (the peer will get my newer hello);
 * - a hello newer than my rings means the peer started over (its control link flapped without mine, the
 *   TCP driver can report that on one side only; or its data plane reset): I report linkDown if the link
 *   was up, retire my rings, make rings of that same generation, send my hello, and wire to the peer's;
 * - a hello of my generation completes the pair.
 * So both sides end on one generation without a loop. When the data plane reports the peer dead while the
 * control link is up, this side starts a newer generation (linkDown first): the link heals if the peer is
 * alive, and the control link goes down if it is not.
 *
 * A hello may be lost (a TCP driver can drop a connection it just queued frames on, e.g. when both sides
 * dialed at once), so a side still connecting repeats its hello every helloRetryMs, and a side that is
 * up answers a repeated hello of its generation with its own again.
 *
 * The control link is not the data path: when it goes down while the fabric link is up, frames keep
 * flowing for controlGraceMs; if it comes back to the same incarnation meanwhile (the TCP driver can drop
 * and redial a connection, e.g. when both sides dialed at once), nothing is reported. A dead peer is
 * reported by the data plane (failed or overdue writes, a co-located process gone) or when the grace ends.
 *
 * Invariants:
 * - Per peer, frames leave in push order and arrive whole, in that order (the ring keeps record order; a
 *   frame larger than a fragment is split into fragments that are reassembled before delivery).
 * - linkUp(peer) only after the peer's blobs were added; linkDown(peer) once per linkUp, before anything of
 *   a newer generation; nothing from a generation is delivered after its linkDown.
 * - Frames are copied out of registered memory before the core sees them: the contract lets the core keep
 *   subarrays of a frame, and ring space is reused once released.
 * - A generation's regions are retired when it ends: their address ranges stay reserved (native/src/
 *   fabric.h), so a late write from the peer's old rings cannot land in live memory.
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
  /** How long an up fabric link outlives its control link (waiting for it to come back). */
  controlGraceMs: number;
  /** A side whose hello got no answer sends it again after this long. */
  helloRetryMs: number;
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
const HELLO_VERSION = 2;

interface Hello {
  v: number;
  /** Generation of the rings below. */
  gen: number;
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
  /** The peer's incarnation, from the control link's linkUp. */
  incarnation: number | undefined;
  /** The control link is up. */
  controlUp: boolean;
  /** Pending end of an up link whose control link went down. */
  graceTimer: NodeJS.Timeout | undefined;
  /** My hello of the current generation (repeated while connecting). */
  hello: Uint8Array | undefined;
  helloTimer: NodeJS.Timeout | undefined;
  /** waiting: no control link; connecting: my hello sent, no matching hello yet; up: wired. */
  state: 'waiting' | 'connecting' | 'up';
  /** Generation of my current rings (0: none). */
  gen: number;
  sender: RingSender | undefined;
  receiver: RingReceiver | undefined;
  /** The endpoint's generation for this peer (from addPeer), to ignore failure reports about older ones. */
  peerGeneration: number | undefined;
  pending: PendingFrame[];
  pendingBytes: number;
  /** Appended since the last flush. */
  dirty: boolean;
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
  /** Highest generation made or seen per peer (kept when a link ends). */
  private readonly generations = new Map<number, number>();
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
    this.endpoint.onPeerFailed((peer, reason, generation) => this.dataPlaneFailed(peer, reason, generation));
    if (this.config.provider === 'shm' && this.config.shmLockRecoveryMs > 0 && !this.endpoint.stats().shmLockRecovery) {
      this.log?.warn(
        { node: this.selfId },
        'fabric shm: this libfabric\'s endpoint layout is unknown, so a member killed inside the provider can wedge the others (see native/README.md)',
      );
    }
    await this.control.start({
      frame: (from, frame) => this.onControlFrame(from, frame),
      linkUp: (peer, incarnation) => this.onControlUp(peer, incarnation),
      linkDown: (peer) => this.onControlDown(peer),
    });
  }

  setPeers(peers: readonly MemberAddress[]): void {
    const keep = new Set(peers.map((p) => p.id));
    for (const [peer, link] of [...this.links]) {
      if (keep.has(peer)) continue;
      this.teardown(link);
      this.links.delete(peer);
    }
    this.control.setPeers(peers);
  }

  push(to: readonly number[], parts: readonly Uint8Array[]): void {
    if (this.closed) return;
    let bytes = 0;
    for (const p of parts) bytes += p.length;
    for (const peer of to) {
      assert(peer !== this.selfId, 'push to self');
      const link = this.linkOf(peer);
      if (link.pendingBytes + bytes > this.config.pendingBytesMax) {
        // Dropping frames is a gap in the stream: the core hears linkDown even if the link was not up.
        this.log?.warn({ node: this.selfId, peer, pendingBytes: link.pendingBytes }, 'fabric: more than pendingBytesMax waiting, frames dropped');
        this.reset(link, `more than pendingBytesMax (${this.config.pendingBytesMax}) bytes waiting`, true);
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
    for (const link of this.links.values()) this.teardown(link);
    this.links.clear();
    this.endpoint?.close();
  }

  /** Native counters, for metrics. */
  stats(): ReturnType<FabricEndpoint['stats']> | undefined {
    return this.endpoint?.stats();
  }

  private linkOf(peer: number): Link {
    let link = this.links.get(peer);
    if (!link) {
      link = {
        peer,
        incarnation: undefined,
        controlUp: false,
        graceTimer: undefined,
        hello: undefined,
        helloTimer: undefined,
        state: 'waiting',
        gen: 0,
        sender: undefined,
        receiver: undefined,
        peerGeneration: undefined,
        pending: [],
        pendingBytes: 0,
        dirty: false,
        fragments: [],
        earlyHello: undefined,
      };
      this.links.set(peer, link);
    }
    return link;
  }

  // ---- link set-up over the control driver ----------------------------------------------------------

  private onControlUp(peer: number, incarnation: number): void {
    if (this.closed) return;
    this.log?.debug({ node: this.selfId, peer, incarnation, state: this.links.get(peer)?.state }, 'fabric: control link up');
    const link = this.linkOf(peer);
    clearTimeout(link.graceTimer);
    link.graceTimer = undefined;
    link.controlUp = true;
    if (link.state !== 'waiting' && link.incarnation === incarnation) {
      // The control link came back to the same process: the generation stands (a new one would make the
      // peer reset a link that may be up). Only the hello may have been lost with the old connection.
      if (link.state === 'connecting') this.sendHello(link);
      return;
    }
    if (link.state !== 'waiting') this.down(link); // another incarnation: start over
    link.incarnation = incarnation;
    this.startGeneration(link, this.newGeneration(peer));
    const early = link.earlyHello;
    link.earlyHello = undefined;
    if (early) this.onControlFrame(peer, early);
  }

  private onControlDown(peer: number): void {
    const link = this.links.get(peer);
    this.log?.debug({ node: this.selfId, peer, state: link?.state }, 'fabric: control link down');
    if (!link) return;
    link.controlUp = false;
    if (link.state === 'waiting') return;
    // Frames keep flowing on the fabric (or the hello exchange resumes): the generation ends only if the
    // control link stays away past the grace.
    link.graceTimer ??= setTimeout(() => {
      link.graceTimer = undefined;
      if (link.controlUp || this.links.get(peer) !== link) return;
      this.down(link);
      link.state = 'waiting';
    }, this.config.controlGraceMs);
  }

  /** The data plane found the peer dead: start a newer generation (the control link says if it is). */
  private dataPlaneFailed(peer: number, reason: string, peerGeneration: number): void {
    const link = this.links.get(peer);
    if (!link || link.state === 'waiting' || link.peerGeneration !== peerGeneration) return; // about older rings
    this.reset(link, reason, false);
  }

  /** Reports linkDown (if up, or always), drops what waits, and starts a newer generation if the control link is up. */
  private reset(link: Link, reason: string, reportAlways: boolean): void {
    const wasUp = link.state === 'up';
    this.log?.warn({ node: this.selfId, peer: link.peer, reason }, 'fabric link reset');
    this.teardown(link);
    link.pending = [];
    link.pendingBytes = 0;
    if (wasUp || reportAlways) this.listener!.linkDown(link.peer);
    if (link.controlUp) this.startGeneration(link, this.newGeneration(link.peer));
    else link.state = 'waiting';
  }

  /**
   * The link's current generation ends. If it was up: linkDown, and the frames still waiting for it are
   * dropped with it (pushed before the linkDown, so they "may not have arrived"). If it never came up, they
   * stay for the next generation (frames for a peer not connected yet are kept).
   */
  private down(link: Link): void {
    const wasUp = link.state === 'up';
    this.teardown(link);
    if (!wasUp) return;
    this.log?.info({ node: this.selfId, peer: link.peer, gen: link.gen, droppedBytes: link.pendingBytes }, 'fabric link down');
    link.pending = [];
    link.pendingBytes = 0;
    this.listener!.linkDown(link.peer);
  }

  private newGeneration(peer: number): number {
    const g = Math.max(Date.now() * 1024, (this.generations.get(peer) ?? 0) + 1);
    this.generations.set(peer, g);
    return g;
  }

  /** Registers rings of generation `gen` and sends the peer their blobs. */
  private startGeneration(link: Link, gen: number): void {
    assert(link.sender === undefined && link.receiver === undefined, 'rings of an older generation still in place');
    const ep = this.endpoint!;
    const geometry = (regionId: number): RingGeometry => ({ regionId, capacityBytes: this.config.ringCapacityBytes, ackSlots: 1 });
    link.gen = gen;
    link.state = 'connecting';
    link.sender = new RingSender(ep, geometry(this.nextRegionId++));
    link.receiver = new RingReceiver(ep, geometry(this.nextRegionId++), link.peer, 0, null);
    const hello: Hello = {
      v: HELLO_VERSION,
      gen,
      endpoint: Buffer.from(ep.endpointBlob()).toString('base64'),
      tx: Buffer.from(link.sender.regionBlob()).toString('base64'),
      rx: Buffer.from(link.receiver.regionBlob()).toString('base64'),
      capacityBytes: this.config.ringCapacityBytes,
    };
    link.hello = Buffer.from(JSON.stringify(hello));
    this.sendHello(link);
    link.helloTimer = setInterval(() => {
      if (link.state === 'connecting' && link.controlUp) this.sendHello(link);
    }, this.config.helloRetryMs).unref();
  }

  private sendHello(link: Link): void {
    if (!link.hello || !link.controlUp) return;
    this.control.push([link.peer], [link.hello]);
    this.control.flush();
  }

  private onControlFrame(from: number, frame: Uint8Array): void {
    if (this.closed) return;
    const link = this.linkOf(from);
    if (link.state === 'waiting') {
      // The peer's hello overtook our own linkUp report: keep it for onControlUp.
      link.earlyHello = frame;
      return;
    }
    let hello: Hello;
    try {
      hello = JSON.parse(Buffer.from(frame).toString('utf8')) as Hello;
    } catch {
      this.log?.warn({ node: this.selfId, peer: from }, 'fabric: malformed hello ignored');
      return;
    }
    if (hello.v !== HELLO_VERSION || hello.capacityBytes !== this.config.ringCapacityBytes) {
      // Configuration mismatch: the link cannot work; say so loudly and keep it down.
      this.log?.error({ node: this.selfId, peer: from, version: hello.v, ringCapacityBytes: hello.capacityBytes }, 'fabric hello mismatch (version or ringCapacityBytes): link stays down');
      return;
    }
    this.log?.debug({ node: this.selfId, peer: from, gen: hello.gen, myGen: link.gen, state: link.state }, 'fabric: hello');
    if (hello.gen < link.gen) return; // stale: the peer gets my newer hello
    if (hello.gen > link.gen) {
      // The peer started over: follow it into its generation.
      this.down(link);
      this.generations.set(from, Math.max(this.generations.get(from) ?? 0, hello.gen));
      this.startGeneration(link, hello.gen);
    } else if (link.state === 'up') {
      // The peer repeats the hello I am wired to: it has not got mine yet.
      this.sendHello(link);
      return;
    }
    this.wire(link, hello);
  }

  private wire(link: Link, hello: Hello): void {
    const ep = this.endpoint!;
    const peerTx = Buffer.from(hello.tx, 'base64');
    const peerRx = Buffer.from(hello.rx, 'base64');
    try {
      link.peerGeneration = ep.addPeer(link.peer, Buffer.from(hello.endpoint, 'base64'));
      ep.addRemoteRegion(link.peer, peerTx);
      ep.addRemoteRegion(link.peer, peerRx);
    } catch (e) {
      this.log?.error({ node: this.selfId, peer: link.peer, err: (e as Error).message }, 'fabric hello rejected: link stays down');
      return;
    }
    const sender = link.sender!;
    const receiver = link.receiver!;
    sender.addReceiver(link.peer, 0, regionIdOfBlob(peerRx));
    sender.onWritable(() => this.drain(link, true));
    receiver.bindSender(regionIdOfBlob(peerTx));
    receiver.onReadable(() => this.receive(link, receiver));
    link.state = 'up';
    clearInterval(link.helloTimer);
    link.helloTimer = undefined;
    this.log?.info({ node: this.selfId, peer: link.peer, gen: link.gen, incarnation: link.incarnation, provider: ep.provider }, 'fabric link up');
    this.listener!.linkUp(link.peer, link.incarnation!);
    this.drain(link, true);
  }

  /** Retires the current generation's rings and forgets the peer's address (frames waiting stay). */
  private teardown(link: Link): void {
    clearTimeout(link.graceTimer);
    link.graceTimer = undefined;
    clearInterval(link.helloTimer);
    link.helloTimer = undefined;
    link.hello = undefined;
    link.fragments = [];
    link.dirty = false;
    link.sender?.retire();
    link.receiver?.retire();
    link.sender = undefined;
    link.receiver = undefined;
    // A frame part-way into the old ring starts again from its first byte in the next generation.
    for (const f of link.pending) f.offset = 0;
    if (this.endpoint && link.peerGeneration !== undefined) this.endpoint.removePeer(link.peer);
    link.peerGeneration = undefined;
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
