/**
 * One member process of the fabric micro-bench (forked by bench/fabric.ts; IPC channel to the parent).
 * Runs one workload over either the native data plane (a libfabric provider) or plain node:net sockets, so
 * both are measured the same way: messages counted at the receivers inside a common time window.
 *
 * Workloads:
 *   ring      every member multicasts `sizeBytes` messages to all others as fast as back-pressure allows,
 *             batching per turn (fabric: a RingSender flushed once per turn; net: cork/uncork per turn)
 *   rows      every member updates its 64-byte row as fast as it can (fabric: one-sided row writes to all;
 *             net: a 72-byte frame to every peer); receivers count the updates they observe
 *   pingpong  members 0 and 1 bounce one 64-byte row/frame; round-trip times measured at member 0
 *   idle      nothing to do: measures the CPU an idle member burns
 */
import net from 'node:net';
import * as hdr from 'hdr-histogram-js';
import type { FabricProvider } from '../src/transport/fabric/addon.js';
import { fabricConfig } from '../src/transport/fabric/config.js';
import { FabricEndpoint } from '../src/transport/fabric/endpoint.js';
import { GuardedTable } from '../src/transport/fabric/guarded-table.js';
import { RingReceiver, RingSender, recordBytes } from '../src/transport/fabric/message-ring.js';

export type Transport = 'net' | FabricProvider;
export type Workload = 'ring' | 'rows' | 'pingpong' | 'idle';

export interface BenchStart {
  op: 'start';
  rank: number;
  n: number;
  transport: Transport;
  workload: Workload;
  sizeBytes: number;
  seconds: number;
  warmupMs: number;
}
export interface BenchHello {
  rank: number;
  endpoint?: string;
  regions?: Record<number, string>;
  port?: number;
}
export type ToBenchMember = BenchStart | { op: 'peers'; hellos: BenchHello[] } | { op: 'go' } | { op: 'exit' };
export interface BenchResult {
  rank: number;
  sent: number;
  /** Messages (or observed row updates) received from others inside the window. */
  received: number;
  rttP50Us?: number;
  rttP99Us?: number;
  roundTrips?: number;
  /** CPU time over wall time in the window, all threads (1 = one core). */
  cpu: number;
  /** Sender turns, turns that ended on a full ring, receive callbacks (diagnostics). */
  turns: number;
  blocked: number;
  polls: number;
}
export type FromBenchMember = { op: 'hello'; hello: BenchHello } | { op: 'ready' } | { op: 'result'; result: BenchResult };

const TABLE = 1;
const ring = (rank: number) => 100 + rank;
const BATCH_BYTES = 4 << 20;
const BATCH_MESSAGES = 4096;

const sendParent = (m: FromBenchMember) => process.send!(m);
process.on('disconnect', () => process.exit(0));

let start: BenchStart;
let others: number[] = [];
let endpoint: FabricEndpoint | undefined;
let table: GuardedTable | undefined;
let ringSender: RingSender | undefined;
const ringReceivers = new Map<number, RingReceiver>();
let server: net.Server | undefined;
const outgoing = new Map<number, net.Socket>();

// Measurement window, in this process's performance.now() time.
let windowStart = Number.POSITIVE_INFINITY;
let windowEnd = Number.POSITIVE_INFINITY;
let stopAt = Number.POSITIVE_INFINITY;
let sent = 0;
let received = 0;
let turns = 0;
let blocked = 0;
let polls = 0;
const countReceived = (k: number) => {
  const now = performance.now();
  if (now >= windowStart && now < windowEnd) received += k;
};

process.on('message', (raw) => {
  const m = raw as ToBenchMember;
  if (m.op === 'start') void setup(m);
  else if (m.op === 'peers') wire(m.hellos);
  else if (m.op === 'go') go();
  else if (m.op === 'exit') {
    endpoint?.close();
    process.exit(0);
  }
});

async function setup(m: BenchStart): Promise<void> {
  start = m;
  others = [...Array(m.n).keys()].filter((r) => r !== m.rank);
  const hello: BenchHello = { rank: m.rank };
  if (m.transport === 'net') {
    server = net.createServer((socket) => receiveFrames(socket));
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    hello.port = (server.address() as net.AddressInfo).port;
  } else {
    const ep = FabricEndpoint.open(fabricConfig({ provider: m.transport, shmPrefix: 'sqbench' }));
    endpoint = ep;
    hello.endpoint = Buffer.from(ep.endpointBlob()).toString('base64');
    hello.regions = {};
    if (m.workload === 'rows' || m.workload === 'pingpong') {
      table = new GuardedTable(ep, { regionId: TABLE, rows: m.n, rowPayloadBytes: 64, myRow: m.rank });
      hello.regions[TABLE] = Buffer.from(table.regionBlob()).toString('base64');
    } else if (m.workload === 'ring') {
      const capacityBytes = Math.max(16 << 20, 4 * recordBytes(m.sizeBytes));
      ringSender = new RingSender(ep, { regionId: ring(m.rank), capacityBytes, ackSlots: m.n });
      hello.regions[ring(m.rank)] = Buffer.from(ringSender.regionBlob()).toString('base64');
      for (const s of others) {
        const rx = new RingReceiver(ep, { regionId: ring(s), capacityBytes, ackSlots: m.n }, s, m.rank);
        ringReceivers.set(s, rx);
        hello.regions[ring(s)] = Buffer.from(rx.regionBlob()).toString('base64');
      }
    }
  }
  sendParent({ op: 'hello', hello });
}

function wire(hellos: BenchHello[]): void {
  const peers = hellos.filter((h) => h.rank !== start.rank);
  if (start.transport === 'net') {
    let connected = 0;
    for (const h of peers) {
      const s = net.connect(h.port!, '127.0.0.1', () => {
        s.setNoDelay(true);
        if (++connected === peers.length) sendParent({ op: 'ready' });
      });
      receiveFrames(s); // pingpong replies come back on the same socket
      outgoing.set(h.rank, s);
    }
    if (peers.length === 0) sendParent({ op: 'ready' });
    return;
  }
  const ep = endpoint!;
  for (const h of peers) {
    ep.addPeer(h.rank, Buffer.from(h.endpoint!, 'base64'));
    for (const [id, blob] of Object.entries(h.regions!)) {
      const regionId = Number(id);
      if (regionId === TABLE || regionId === ring(h.rank) || regionId === ring(start.rank)) ep.addRemoteRegion(h.rank, Buffer.from(blob, 'base64'));
    }
    table?.setPeer(h.rank, h.rank);
    ringSender?.addReceiver(h.rank, h.rank);
  }
  // Lazy connection set-up (shm, rxm) needs both sides to progress once: push one row/doorbell now.
  table?.update((p) => p.fill(0));
  sendParent({ op: 'ready' });
}

function go(): void {
  const now = performance.now();
  windowStart = now + start.warmupMs;
  windowEnd = windowStart + start.seconds * 1000;
  stopAt = windowEnd + 200;
  const cpu0 = { at: windowStart, usage: process.cpuUsage() };
  setTimeout(() => Object.assign(cpu0, { usage: process.cpuUsage() }), start.warmupMs);
  setTimeout(() => {
    const used = process.cpuUsage(cpu0.usage);
    const cpu = (used.user + used.system) / 1000 / (start.seconds * 1000);
    sendParent({ op: 'result', result: { rank: start.rank, sent, received, cpu, turns, blocked, polls, ...pingResult() } });
  }, stopAt - now + 100);
  if (start.workload === 'ring') startRing();
  else if (start.workload === 'rows') startRows();
  else if (start.workload === 'pingpong') startPingPong();
}

// ---- ring -------------------------------------------------------------------------------------------

function startRing(): void {
  const payload = Buffer.alloc(start.sizeBytes, start.rank + 1);
  if (endpoint) {
    const tx = ringSender!;
    for (const rx of ringReceivers.values()) {
      rx.onReadable(() => {
        polls++;
        const msgs = rx.poll();
        if (msgs.length === 0) return;
        countReceived(msgs.length);
        rx.release(msgs[msgs.length - 1]!.end);
      });
    }
    const pump = () => {
      if (performance.now() > stopAt) return;
      let bytes = 0;
      let k = 0;
      while (k < BATCH_MESSAGES && bytes < BATCH_BYTES && tx.send(payload)) {
        k++;
        bytes += payload.length;
      }
      sent += k;
      turns++;
      tx.flush();
      if (k === BATCH_MESSAGES || bytes >= BATCH_BYTES) setImmediate(pump); // else full: onWritable resumes
      else blocked++;
    };
    tx.onWritable(() => setImmediate(pump));
    pump();
    return;
  }
  const header = Buffer.alloc(4);
  header.writeUInt32LE(payload.length);
  const pump = () => {
    if (performance.now() > stopAt) return;
    let bytes = 0;
    let k = 0;
    let full = false;
    for (const s of outgoing.values()) s.cork();
    while (k < BATCH_MESSAGES && bytes < BATCH_BYTES) {
      for (const s of outgoing.values()) {
        s.write(header);
        if (!s.write(payload)) full = true;
      }
      k++;
      bytes += payload.length;
    }
    for (const s of outgoing.values()) s.uncork();
    sent += k;
    if (!full) return void setImmediate(pump);
    let waiting = 0;
    for (const s of outgoing.values()) {
      if (s.writableNeedDrain) {
        waiting++;
        s.once('drain', () => --waiting === 0 && pump());
      }
    }
    if (waiting === 0) setImmediate(pump);
  };
  pump();
}

/** Length-prefixed frames: counts them (and answers pings) without copying payloads. */
function receiveFrames(socket: net.Socket): void {
  let header = Buffer.alloc(0);
  let remaining = 0;
  socket.on('data', (chunk: Buffer) => {
    let at = 0;
    while (at < chunk.length) {
      if (remaining === 0) {
        const take = Math.min(4 - header.length, chunk.length - at);
        header = Buffer.concat([header, chunk.subarray(at, at + take)]);
        at += take;
        if (header.length < 4) break;
        remaining = header.readUInt32LE(0);
        header = Buffer.alloc(0);
        if (remaining === 0) {
          onFrame(socket, chunk.subarray(at, at));
          continue;
        }
      }
      const take = Math.min(remaining, chunk.length - at);
      const body = chunk.subarray(at, at + take);
      at += take;
      remaining -= take;
      if (remaining === 0) onFrame(socket, body);
    }
  });
  socket.on('error', () => {});
}

function onFrame(socket: net.Socket, tail: Buffer): void {
  if (start.workload === 'pingpong') onPingFrame(socket, tail);
  else countReceived(1);
}

// ---- rows -------------------------------------------------------------------------------------------

function startRows(): void {
  const frame = Buffer.alloc(4 + 72);
  frame.writeUInt32LE(72);
  if (table) {
    const t = table;
    // Rows carry the latest value: a row seen at seq 10 then at 25 counts 15 updates received.
    const seen = new Map(others.map((r) => [r, t.seqOf(r)]));
    t.watchRows((row) => {
      const s = t.seqOf(row);
      const prev = seen.get(row)!;
      if (s > prev) {
        countReceived(Number(s - prev));
        seen.set(row, s);
      }
    });
  }
  const pump = () => {
    if (performance.now() > stopAt) return;
    if (table) {
      for (let i = 0; i < 64; i++) table.update((p) => p.fill(i));
    } else {
      for (const s of outgoing.values()) s.cork();
      for (let i = 0; i < 64; i++) for (const s of outgoing.values()) s.write(frame);
      for (const s of outgoing.values()) s.uncork();
    }
    sent += 64;
    setImmediate(pump);
  };
  pump();
}

// ---- pingpong ---------------------------------------------------------------------------------------

const rtt = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 10_000_000, numberOfSignificantValueDigits: 3 });
let roundTrips = 0;
let pingSentAt = 0;

function pingResult(): Partial<BenchResult> {
  if (start.workload !== 'pingpong' || start.rank !== 0) return {};
  return { rttP50Us: rtt.getValueAtPercentile(50), rttP99Us: rtt.getValueAtPercentile(99), roundTrips };
}

function recordRtt(): void {
  const now = performance.now();
  if (now >= windowStart && now < windowEnd) {
    rtt.recordValue(Math.max(1, Math.round((now - pingSentAt) * 1000)));
    roundTrips++;
  }
}

function startPingPong(): void {
  if (start.rank > 1) return;
  if (table) {
    const t = table;
    const peer = start.rank === 0 ? 1 : 0;
    let last = 0n;
    t.watchRows((row) => {
      if (row !== peer) return;
      const s = t.seqOf(row);
      if (s <= last) return;
      last = s;
      if (start.rank === 0) {
        recordRtt();
        if (performance.now() > stopAt) return;
      }
      pingSentAt = performance.now();
      t.update((p) => p.fill(Number(s & 0xffn)));
    });
    if (start.rank === 0) {
      last = t.seqOf(peer);
      pingSentAt = performance.now();
      t.update((p) => p.fill(1));
    }
    return;
  }
  if (start.rank === 0) {
    pingSentAt = performance.now();
    sendPing(outgoing.get(1)!);
  }
}

const ping = Buffer.alloc(4 + 64);
ping.writeUInt32LE(64);

function sendPing(socket: net.Socket): void {
  socket.write(ping);
}

function onPingFrame(socket: net.Socket, _tail: Buffer): void {
  if (start.rank === 0) {
    recordRtt();
    if (performance.now() > stopAt) return;
    pingSentAt = performance.now();
    sendPing(socket);
  } else {
    sendPing(socket); // echo on the socket it came from
  }
}
