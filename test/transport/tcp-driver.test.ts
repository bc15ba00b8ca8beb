import { createHash } from 'node:crypto';
import t from 'tap';
import { pino } from 'pino';
import type { DriverListener } from '../../src/transport/driver.js';
import { TcpDriver } from '../../src/transport/tcp-driver.js';
import { freePorts } from '../../scripts/proc-cluster.js';

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
  const a = new TcpDriver({ selfId: 1, incarnation: 11, groupName: group, listenHost: '127.0.0.1', listenPort: pa!, log });
  const b = new TcpDriver({ selfId: 2, incarnation: 22, groupName: group, listenHost: '127.0.0.1', listenPort: pb!, log });
  const ra = recorder();
  const rb = recorder();
  await a.start(ra);
  await b.start(rb);
  const peers = [
    { id: 1, host: '127.0.0.1', port: pa! },
    { id: 2, host: '127.0.0.1', port: pb! },
  ];
  return { a, b, ra, rb, peers, ports: [pa!, pb!] };
}

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
