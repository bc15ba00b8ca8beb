import { createHash } from 'node:crypto';
import net from 'node:net';
import t from 'tap';
import { pino } from 'pino';
import type { DriverListener } from '../../src/transport/driver.js';
import { TcpDriver } from '../../src/transport/tcp-driver.js';
import { freePorts } from '../../src/node/ports.js';

const log = pino({ level: 'silent' });

interface Recorder extends DriverListener {
  frames: Array<{ from: number; bytes: Buffer }>;
  ups: Array<[number, number]>;
  downs: number[];
}

function recorder(): Recorder {
  const r: Recorder = {
    frames: [],
    ups: [],
    downs: [],
    frame: (from, f) => r.frames.push({ from, bytes: Buffer.from(f) }),
    linkUp: (p, inc) => r.ups.push([p, inc]),
    linkDown: (p) => r.downs.push(p),
  };
  return r;
}

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function pair(group = 'g') {
  const [pa, pb] = await freePorts(2);
  return pairOn(pa!, pb!, group);
}

async function pairOn(pa: number, pb: number, group = 'g') {
  const a = new TcpDriver({ selfId: 1, incarnation: 11, groupName: group, listenHost: '127.0.0.1', listenPort: pa, log });
  const b = new TcpDriver({ selfId: 2, incarnation: 22, groupName: group, listenHost: '127.0.0.1', listenPort: pb, log });
  const ra = recorder();
  const rb = recorder();
  await a.start(ra);
  await b.start(rb);
  const peers = [
    { id: 1, host: '127.0.0.1', port: pa },
    { id: 2, host: '127.0.0.1', port: pb },
  ];
  return { a, b, ra, rb, peers, ports: [pa, pb] };
}

/**
 * A TCP relay on 127.0.0.1 to `target` that holds every chunk, and every end of stream, `delayMs` before
 * passing it on: a slow path that lets a test order the two crossing handshakes. cutClients() breaks
 * the client side of every relayed connection only (the target's side stays open: a half-open link).
 */
async function relay(target: number, delayMs: number) {
  const sockets = new Set<net.Socket>();
  const clients = new Set<net.Socket>();
  const cut = new WeakSet<net.Socket>();
  const later = (fn: () => void): void => void setTimeout(fn, delayMs);
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    for (const [s, other] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('data', (d) => later(() => other.write(d)));
      s.on('close', () => {
        sockets.delete(s);
        if (!cut.has(s)) later(() => other.end());
      });
    }
    clients.add(client);
    client.on('close', () => clients.delete(client));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    cutClients(): void {
      for (const c of clients) {
        cut.add(c);
        c.destroy();
      }
    },
    async close(): Promise<void> {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Frame `seq` of a numbered stream: 4 bytes of seq, then a body whose size varies (some go by reference). */
function numbered(seq: number): Uint8Array[] {
  const head = Buffer.alloc(4);
  head.writeUInt32LE(seq);
  const body = Buffer.alloc(seq % 7 === 0 ? 10_000 : 1 + (seq % 50), seq & 0xff);
  return [head, body];
}

/** The seqs of numbered frames received, checking each body. */
function seqs(frames: Array<{ bytes: Buffer }>): number[] {
  return frames.map((f) => {
    const seq = f.bytes.readUInt32LE(0);
    const want = Buffer.concat(numbered(seq));
    return want.equals(f.bytes) ? seq : -1;
  });
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

t.test('one connection per pair even when both dial; frames of any size arrive whole and in order', async (t) => {
  const { a, b, ra, rb, peers } = await pair();
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  a.setPeers(peers);
  b.setPeers(peers);
  await until('links up', () => ra.ups.length > 0 && rb.ups.length > 0);
  t.same(ra.ups, [[2, 22]], 'A sees B once, with its incarnation');
  t.same(rb.ups, [[1, 11]]);
  const sizes = [1, 7, 100, 16 * 1024 - 1, 16 * 1024, 70_000, 3 * 1024 * 1024, 5];
  const sent: Buffer[] = [];
  for (const size of sizes) {
    const body = Buffer.alloc(size);
    for (let i = 0; i < size; i++) body[i] = (i * 31 + size) & 0xff;
    // Split into parts: small head, the rest (large parts go by reference).
    const parts = size > 3 ? [body.subarray(0, 3), body.subarray(3)] : [body];
    a.push([2], parts);
    sent.push(body);
  }
  a.flush();
  await until('all frames', () => rb.frames.length === sizes.length);
  const h = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  t.same(rb.frames.map((f) => h(f.bytes)), sent.map(h), 'every frame identical, in order');
  t.ok(rb.frames.every((f) => f.from === 1));
  b.push([1], [Buffer.from('back')]);
  b.flush();
  await until('reply', () => ra.frames.length === 1);
  t.equal(ra.frames[0]!.bytes.toString(), 'back', 'the same connection carries both directions');
});

t.test('a peer that goes away is reported once; a restarted one comes back with a new incarnation', async (t) => {
  const { a, b, ra, peers, ports } = await pair();
  t.teardown(() => a.close());
  a.setPeers(peers);
  b.setPeers(peers);
  await until('up', () => ra.ups.length === 1);
  await b.close();
  await until('down', () => ra.downs.length === 1);
  t.same(ra.downs, [2]);
  a.push([2], [Buffer.from('queued while down')]);
  a.flush();
  const b2 = new TcpDriver({ selfId: 2, incarnation: 23, groupName: 'g', listenHost: '127.0.0.1', listenPort: ports[1]!, log });
  const rb2 = recorder();
  await b2.start(rb2);
  t.teardown(() => b2.close());
  b2.setPeers(peers);
  await until('back up', () => ra.ups.length === 2);
  t.same(ra.ups[1], [2, 23], 'new incarnation');
  await until('queued frame', () => rb2.frames.length === 1);
  t.equal(rb2.frames[0]!.bytes.toString(), 'queued while down', 'frames pushed while down go out on reconnect');
});

t.test('a member of another group is refused', async (t) => {
  const [pa, pb] = await freePorts(2);
  const a = new TcpDriver({ selfId: 1, incarnation: 1, groupName: 'one', listenHost: '127.0.0.1', listenPort: pa!, log });
  const b = new TcpDriver({ selfId: 2, incarnation: 2, groupName: 'two', listenHost: '127.0.0.1', listenPort: pb!, log });
  const ra = recorder();
  const rb = recorder();
  await a.start(ra);
  await b.start(rb);
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  a.setPeers([{ id: 2, host: '127.0.0.1', port: pb! }]);
  await new Promise((r) => setTimeout(r, 300));
  t.same(ra.ups, []);
  t.same(rb.ups, []);
});

t.test('both dial at once while frames are pushed on both sides: one link, no linkDown, every frame once and in order', async (t) => {
  const rounds = 20;
  const turns = 30;
  const perTurn = 10;
  for (let round = 0; round < rounds; round++) {
    const { a, b, ra, rb, peers } = await pair();
    try {
      a.setPeers(peers);
      b.setPeers(peers);
      // Push and flush in many turns from the first instant: most of these land during the handshake.
      let seq = 0;
      for (let turn = 0; turn < turns; turn++) {
        for (let i = 0; i < perTurn; i++, seq++) {
          a.push([2], numbered(seq));
          b.push([1], numbered(seq));
        }
        a.flush();
        b.flush();
        await new Promise((r) => setImmediate(r));
      }
      const n = turns * perTurn;
      await until('every frame both ways, one socket each', () => ra.frames.length >= n && rb.frames.length >= n && a.openSockets === 1 && b.openSockets === 1);
      // Let any late tie-break or close play out before judging.
      await new Promise((r) => setTimeout(r, 50));
      const ok =
        JSON.stringify(ra.ups) === '[[2,22]]' &&
        JSON.stringify(rb.ups) === '[[1,11]]' &&
        ra.downs.length === 0 &&
        rb.downs.length === 0 &&
        JSON.stringify(seqs(ra.frames)) === JSON.stringify(range(n)) &&
        JSON.stringify(seqs(rb.frames)) === JSON.stringify(range(n)) &&
        a.openSockets === 1 &&
        b.openSockets === 1;
      if (!ok) {
        t.same({ ups: [ra.ups, rb.ups], downs: [ra.downs, rb.downs], sockets: [a.openSockets, b.openSockets] }, { ups: [[[2, 22]], [[1, 11]]], downs: [[], []], sockets: [1, 1] }, `round ${round}: link events`);
        t.same(seqs(ra.frames), range(n), `round ${round}: frames at A`);
        t.same(seqs(rb.frames), range(n), `round ${round}: frames at B`);
        return;
      }
    } finally {
      await a.close();
      await b.close();
    }
  }
  t.pass(`${rounds} rounds: one linkUp each side, no linkDown, one socket each, ${turns * perTurn} frames each way exactly once in order`);
});

// The crossing that used to flap: B's dial reaches A only after A's own dial was accepted by B.
for (const slow of ['B to A', 'A to B'] as const) {
  t.test(`crossing dials with the ${slow} path slow: the tie-break keeps one link quietly, frames go through`, async (t) => {
    const [pa, pb] = await freePorts(2);
    const { a, b, ra, rb } = await pairOn(pa!, pb!);
    const r = await relay(slow === 'B to A' ? pa! : pb!, 200);
    t.teardown(async () => {
      await a.close();
      await b.close();
      await r.close();
    });
    const direct = [
      { id: 1, host: '127.0.0.1', port: pa! },
      { id: 2, host: '127.0.0.1', port: pb! },
    ];
    const relayed = direct.map((m) => (m.port === (slow === 'B to A' ? pa : pb) ? { ...m, port: r.port } : m));
    a.setPeers(slow === 'A to B' ? relayed : direct);
    b.setPeers(slow === 'B to A' ? relayed : direct);
    for (let seq = 0; seq < 50; seq++) {
      a.push([2], numbered(seq));
      b.push([1], numbered(seq));
    }
    a.flush();
    b.flush();
    await until('frames both ways', () => ra.frames.length >= 50 && rb.frames.length >= 50);
    // Outlast the relay's delay (twice) so any late HELLO or close has arrived and been decided.
    await new Promise((r) => setTimeout(r, 600));
    await until('one socket each', () => a.openSockets === 1 && b.openSockets === 1);
    t.same([ra.ups, rb.ups], [[[2, 22]], [[1, 11]]], 'one linkUp on each side');
    t.same([ra.downs, rb.downs], [[], []], 'no linkDown on either side');
    t.same(seqs(ra.frames), range(50), 'A received every frame once, in order');
    t.same(seqs(rb.frames), range(50), 'B received every frame once, in order');
  });
}

t.test('a link lost on one side only: the dialer dials again, the acceptor replaces the link and reports it down', async (t) => {
  const [pa, pb] = await freePorts(2);
  const { a, b, ra, rb } = await pairOn(pa!, pb!);
  const r = await relay(pb!, 0);
  t.teardown(async () => {
    await a.close();
    await b.close();
    await r.close();
  });
  // Only A knows an address (B's, through the relay): A dials, B accepts.
  a.setPeers([{ id: 2, host: '127.0.0.1', port: r.port }]);
  a.push([2], numbered(0));
  a.flush();
  await until('first frame', () => rb.frames.length === 1);
  r.cutClients();
  await until('A sees the link down', () => ra.downs.length === 1);
  // Pushed while the link is down: they wait for the next link.
  for (let seq = 1; seq < 20; seq++) a.push([2], numbered(seq));
  a.flush();
  await until('frames after the new link', () => rb.frames.length === 20);
  await until('one socket each', () => a.openSockets === 1 && b.openSockets === 1);
  t.same(ra.ups, [[2, 22], [2, 22]], 'A: up, then up again (same incarnation)');
  t.same(ra.downs, [2], 'A: one linkDown');
  t.same(rb.ups, [[1, 11], [1, 11]], 'B: up, then up again');
  t.same(rb.downs, [1], 'B: the half-open link it still held is reported down when A dials again');
  t.same(seqs(rb.frames), range(20), 'B received every frame once, in order');
  b.push([1], [Buffer.from('back')]);
  b.flush();
  await until('reply', () => ra.frames.length === 1);
  t.equal(ra.frames[0]!.bytes.toString(), 'back', 'B answers on the new link');
});
