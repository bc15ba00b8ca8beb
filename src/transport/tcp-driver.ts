import net from 'node:net';
import { assert } from '../assert.js';
import type { Logger } from '../log.js';
import type { DriverListener, MemberAddress, TransportDriver } from './driver.js';
import { readU32, writeU32 } from './wire.js';

/**
 * The TCP data plane: one connection per pair of members (node:net), frames length-prefixed (u32 little
 * endian) and multiplexed by their own header (kind, shard, view).
 *
 * Connections. Either side may dial (a joiner must reach members that do not know it yet); the acceptor
 * decides: it refuses a dial if it has its own dial to that peer in progress and its id is the lower one
 * (when both dial at once, the lower id's dial wins), and otherwise accepts (a dial from a restarted peer
 * replaces the old connection). The dialer uses a connection only once the acceptor said yes, so no frame
 * is ever sent on a connection that is then dropped by the tie-break. Each side first sends HELLO
 * {group, id, incarnation}; a peer of another group is refused.
 *
 * Sending. push() queues frames per peer until flush() (once per turn): small parts are copied into a
 * per-peer staging buffer together with their length prefixes, parts of inlineCopyBytesMax or more are
 * written by reference (a multicast batch of large payloads is never copied). flush() writes each
 * peer's queue with one corked writev. Frames pushed to a peer that is not connected wait (up to
 * unsentBytesMax) and go out once it connects.
 *
 * Receiving. Frames that lie inside one read chunk are handed over as subarrays (no copy); a frame that
 * spans chunks is assembled once into a buffer of its exact size.
 *
 * Invariants: at most one established connection per peer; frames on a connection are delivered in
 * order and only after the handshake; linkDown follows every established connection that closes, and
 * no frame of a closed connection is delivered after it.
 */

export interface TcpDriverOptions {
  readonly selfId: number;
  readonly incarnation: number;
  readonly groupName: string;
  /** Where to listen; port 0 picks a free port (see `port` after start). */
  readonly listenHost: string;
  readonly listenPort: number;
  /** Bytes queued for a peer that is not connected before they are dropped (and linkDown reported). */
  readonly unsentBytesMax?: number;
  /** Parts smaller than this are copied into the staging buffer; larger ones are written by reference. */
  readonly inlineCopyBytesMax?: number;
  /** First reconnect delay; doubles up to reconnectMsMax. */
  readonly reconnectMs?: number;
  readonly reconnectMsMax?: number;
  /** Largest frame accepted from a peer (a longer length prefix closes the connection). */
  readonly frameBytesMax?: number;
  readonly log: Logger;
}

const HELLO = 0xf0;
/** Smallest staging buffer (under Buffer.poolSize / 2, so it comes from Node's shared pool). */
const STAGE_BYTES_MIN = 2048;
const HANDSHAKE_TIMEOUT_MS = 5000;

interface Hello {
  readonly group: string;
  readonly id: number;
  readonly incarnation: number;
  /** Set by the acceptor in its answer. */
  readonly accept?: boolean;
}

class Conn {
  readonly socket: net.Socket;
  readonly dialed: boolean;
  peer: number | null = null;
  incarnation = 0;
  established = false;
  closed = false;
  #partial: Buffer | null = null;
  #partialFill = 0;
  #head: Buffer | null = null;

  constructor(socket: net.Socket, dialed: boolean) {
    this.socket = socket;
    this.dialed = dialed;
  }

  /** Split incoming bytes into frames. Returns an error message if the stream is malformed. */
  feed(chunk: Buffer, frameBytesMax: number, onFrame: (frame: Uint8Array) => void): string | null {
    let buf = chunk;
    let off = 0;
    if (this.#head) {
      buf = Buffer.concat([this.#head, chunk]);
      this.#head = null;
    }
    while (off < buf.length) {
      if (this.#partial) {
        const need = this.#partial.length - this.#partialFill;
        const take = Math.min(need, buf.length - off);
        buf.copy(this.#partial, this.#partialFill, off, off + take);
        this.#partialFill += take;
        off += take;
        if (this.#partialFill === this.#partial.length) {
          const frame = this.#partial;
          this.#partial = null;
          onFrame(frame);
          if (this.closed) return null;
        }
        continue;
      }
      if (buf.length - off < 4) {
        this.#head = Buffer.from(buf.subarray(off));
        return null;
      }
      const len = readU32(buf, off);
      if (len === 0 || len > frameBytesMax) return `frame of ${len} bytes (limit ${frameBytesMax})`;
      off += 4;
      if (buf.length - off >= len) {
        onFrame(buf.subarray(off, off + len));
        off += len;
        if (this.closed) return null;
      } else {
        this.#partial = Buffer.allocUnsafe(len);
        this.#partialFill = 0;
      }
    }
    return null;
  }
}

interface Peer {
  readonly id: number;
  address: MemberAddress | null;
  conn: Conn | null;
  dialing: Conn | null;
  /** Segments ready to write (length prefixes and small parts staged, large parts by reference). */
  out: Uint8Array[];
  outBytes: number;
  stage: Buffer | null;
  stageStart: number;
  stageUsed: number;
  reconnectMs: number;
  reconnectTimer: NodeJS.Timeout | null;
  wanted: boolean;
}

export class TcpDriver implements TransportDriver {
  readonly selfId: number;
  readonly #o: TcpDriverOptions;
  readonly #unsentBytesMax: number;
  readonly #inlineCopyBytesMax: number;
  readonly #frameBytesMax: number;
  readonly #peers = new Map<number, Peer>();
  readonly #dirty = new Set<Peer>();
  readonly #pendingConns = new Set<Conn>();
  #server: net.Server | null = null;
  #listener: DriverListener | null = null;
  #closed = false;
  #port = 0;

  constructor(o: TcpDriverOptions) {
    this.selfId = o.selfId;
    this.#o = o;
    this.#unsentBytesMax = o.unsentBytesMax ?? 256 * 1024 * 1024;
    this.#inlineCopyBytesMax = o.inlineCopyBytesMax ?? 4096;
    this.#frameBytesMax = o.frameBytesMax ?? 2 ** 31;
  }

  /** The port listened on (after start). */
  get port(): number {
    return this.#port;
  }

  async start(listener: DriverListener): Promise<void> {
    this.#listener = listener;
    const server = net.createServer((socket) => this.#accepted(socket));
    server.on('error', (e) => this.#o.log.error({ err: e.message }, 'listen socket error'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#o.listenPort, this.#o.listenHost, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
    const addr = server.address();
    this.#port = typeof addr === 'object' && addr !== null ? addr.port : this.#o.listenPort;
  }

  setPeers(peers: readonly MemberAddress[]): void {
    if (this.#closed) return;
    const wanted = new Set<number>();
    for (const a of peers) {
      if (a.id === this.selfId) continue;
      wanted.add(a.id);
      const p = this.#peer(a.id);
      p.wanted = true;
      const moved = p.address !== null && (p.address.host !== a.host || p.address.port !== a.port);
      p.address = { id: a.id, host: a.host, port: a.port };
      if (moved && p.dialing) this.#closeConn(p.dialing, 'address changed');
      if (!p.conn && !p.dialing && !p.reconnectTimer) this.#dial(p);
    }
    for (const p of this.#peers.values()) {
      if (!wanted.has(p.id) && p.wanted) {
        p.wanted = false;
        if (p.reconnectTimer) clearTimeout(p.reconnectTimer);
        p.reconnectTimer = null;
      }
    }
  }

  push(to: readonly number[], parts: readonly Uint8Array[]): void {
    if (this.#closed) return;
    let len = 0;
    for (const part of parts) len += part.length;
    assert(len > 0 && len <= this.#frameBytesMax, `frame of ${len} bytes`);
    for (const id of to) {
      if (id === this.selfId) continue;
      const p = this.#peer(id);
      this.#queue(p, len, parts);
      this.#dirty.add(p);
      if (!p.conn && p.outBytes > this.#unsentBytesMax) {
        this.#o.log.warn({ peer: id, bytes: p.outBytes }, 'peer not connected: unsent frames exceed unsentBytesMax, dropping them');
        this.#resetOut(p);
        this.#listener?.linkDown(id);
      }
      if (!p.conn && !p.dialing && !p.reconnectTimer && p.address) this.#dial(p);
    }
  }

  flush(): void {
    for (const p of this.#dirty) this.#write(p);
    this.#dirty.clear();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#peers.values()) {
      if (p.reconnectTimer) clearTimeout(p.reconnectTimer);
      p.reconnectTimer = null;
      if (p.conn) p.conn.socket.destroy();
      if (p.dialing) p.dialing.socket.destroy();
    }
    for (const c of this.#pendingConns) c.socket.destroy();
    const server = this.#server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // ------------------------------------------------------------------ sending

  #peer(id: number): Peer {
    let p = this.#peers.get(id);
    if (!p) {
      p = {
        id,
        address: null,
        conn: null,
        dialing: null,
        out: [],
        outBytes: 0,
        stage: null,
        stageStart: 0,
        stageUsed: 0,
        reconnectMs: this.#o.reconnectMs ?? 50,
        reconnectTimer: null,
        wanted: false,
      };
      this.#peers.set(id, p);
    }
    return p;
  }

  /** Make room for `bytes` (and what else this frame stages: `frameBytes`) in the staging buffer. */
  #stageRoom(p: Peer, bytes: number, frameBytes = bytes): void {
    if (p.stage && p.stage.length - p.stageUsed >= bytes) return;
    this.#closeStage(p);
    // Sized to the frame being queued: a turn that only pushes a row frame allocates a few bytes from
    // the pool, not a large buffer (the socket owns staged bytes until written, so they are not reused).
    p.stage = Buffer.allocUnsafe(Math.max(STAGE_BYTES_MIN, frameBytes));
    p.stageStart = 0;
    p.stageUsed = 0;
  }

  #closeStage(p: Peer): void {
    if (p.stage && p.stageUsed > p.stageStart) {
      p.out.push(p.stage.subarray(p.stageStart, p.stageUsed));
      p.stageStart = p.stageUsed;
    }
  }

  #queue(p: Peer, len: number, parts: readonly Uint8Array[]): void {
    let staged = 4;
    for (const part of parts) if (part.length < this.#inlineCopyBytesMax) staged += part.length;
    this.#stageRoom(p, 4, staged);
    writeU32(p.stage!, p.stageUsed, len);
    p.stageUsed += 4;
    for (const part of parts) {
      if (part.length < this.#inlineCopyBytesMax) {
        this.#stageRoom(p, part.length, staged);
        p.stage!.set(part, p.stageUsed);
        p.stageUsed += part.length;
      } else {
        this.#closeStage(p);
        p.out.push(part);
      }
    }
    p.outBytes += len + 4;
  }

  #resetOut(p: Peer): void {
    p.out = [];
    p.outBytes = 0;
    p.stage = null;
    p.stageStart = 0;
    p.stageUsed = 0;
  }

  #write(p: Peer): void {
    const conn = p.conn;
    if (!conn || !conn.established || conn.closed) return;
    this.#closeStage(p);
    if (p.out.length === 0) return;
    const socket = conn.socket;
    socket.cork();
    for (const seg of p.out) socket.write(seg);
    socket.uncork();
    p.out = [];
    p.outBytes = 0;
    // The staging buffer's written part now belongs to the socket; start a fresh one.
    p.stage = null;
    p.stageStart = 0;
    p.stageUsed = 0;
  }

  // ------------------------------------------------------------------ connections

  #hello(accept?: boolean): Buffer {
    const hello: Hello = { group: this.#o.groupName, id: this.selfId, incarnation: this.#o.incarnation, ...(accept !== undefined ? { accept } : {}) };
    const body = Buffer.from(JSON.stringify(hello));
    const frame = Buffer.allocUnsafe(4 + 1 + body.length);
    writeU32(frame, 0, 1 + body.length);
    frame[4] = HELLO;
    body.copy(frame, 5);
    return frame;
  }

  #dial(p: Peer): void {
    if (this.#closed || !p.address || p.conn || p.dialing) return;
    const socket = net.connect({ host: p.address.host, port: p.address.port });
    socket.setNoDelay(true);
    const conn = new Conn(socket, true);
    conn.peer = p.id;
    p.dialing = conn;
    this.#wire(conn);
    socket.once('connect', () => socket.write(this.#hello()));
  }

  #accepted(socket: net.Socket): void {
    if (this.#closed) return void socket.destroy();
    socket.setNoDelay(true);
    const conn = new Conn(socket, false);
    this.#pendingConns.add(conn);
    this.#wire(conn);
  }

  #wire(conn: Conn): void {
    const socket = conn.socket;
    const timer = setTimeout(() => {
      if (!conn.established) this.#closeConn(conn, 'handshake timeout');
    }, HANDSHAKE_TIMEOUT_MS);
    timer.unref();
    socket.on('data', (chunk: Buffer) => {
      if (conn.closed) return;
      const err = conn.feed(chunk, this.#frameBytesMax, (frame) => this.#onFrame(conn, frame));
      if (err) this.#closeConn(conn, err);
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      this.#closeConn(conn, 'closed');
    });
  }

  #onFrame(conn: Conn, frame: Uint8Array): void {
    if (conn.established) {
      this.#listener!.frame(conn.peer!, frame);
      return;
    }
    if (frame[0] !== HELLO) return this.#closeConn(conn, 'first frame is not HELLO');
    let hello: Hello;
    try {
      hello = JSON.parse(Buffer.from(frame.subarray(1)).toString()) as Hello;
    } catch {
      return this.#closeConn(conn, 'malformed HELLO');
    }
    if (hello.group !== this.#o.groupName) return this.#closeConn(conn, `HELLO from group ${hello.group}`);
    if (conn.dialed) {
      if (hello.id !== conn.peer) return this.#closeConn(conn, `dialed ${conn.peer}, answered by ${hello.id}`);
      if (!hello.accept) return this.#closeConn(conn, 'dial refused (the peer dials us)');
      const p = this.#peer(hello.id);
      if (p.dialing === conn) p.dialing = null;
      this.#establish(p, conn, hello.incarnation);
      return;
    }
    // Acceptor: decide.
    const p = this.#peer(hello.id);
    this.#pendingConns.delete(conn);
    conn.peer = hello.id;
    const ownDialWins = p.dialing !== null && this.selfId < hello.id;
    conn.socket.write(this.#hello(!ownDialWins));
    if (ownDialWins) {
      conn.closed = true;
      conn.socket.end();
      return;
    }
    if (p.dialing) {
      const d = p.dialing;
      p.dialing = null;
      this.#closeConn(d, 'the peer dialed first');
    }
    this.#establish(p, conn, hello.incarnation);
  }

  #establish(p: Peer, conn: Conn, incarnation: number): void {
    if (p.conn) {
      // A newer connection (the peer restarted, or reconnected first): the old one is gone.
      const old = p.conn;
      p.conn = null;
      old.closed = true;
      old.socket.destroy();
      this.#listener?.linkDown(p.id);
    }
    conn.established = true;
    conn.incarnation = incarnation;
    p.conn = conn;
    p.reconnectMs = this.#o.reconnectMs ?? 50;
    if (p.reconnectTimer) clearTimeout(p.reconnectTimer);
    p.reconnectTimer = null;
    this.#listener?.linkUp(p.id, incarnation);
    this.#write(p);
  }

  #closeConn(conn: Conn, why: string): void {
    if (conn.closed && conn.socket.destroyed) return;
    const wasEstablished = conn.established && !conn.closed;
    conn.closed = true;
    conn.socket.destroy();
    this.#pendingConns.delete(conn);
    if (conn.peer === null) return;
    const p = this.#peers.get(conn.peer);
    if (!p) return;
    if (p.dialing === conn) p.dialing = null;
    if (p.conn === conn) {
      p.conn = null;
      if (wasEstablished) {
        this.#o.log.info({ peer: p.id, why }, 'link down');
        this.#listener?.linkDown(p.id);
      }
    }
    if (!this.#closed && p.wanted && !p.conn && !p.dialing && !p.reconnectTimer) {
      p.reconnectTimer = setTimeout(() => {
        p.reconnectTimer = null;
        this.#dial(p);
      }, p.reconnectMs);
      p.reconnectTimer.unref();
      p.reconnectMs = Math.min(p.reconnectMs * 2, this.#o.reconnectMsMax ?? 1000);
    }
  }
}
