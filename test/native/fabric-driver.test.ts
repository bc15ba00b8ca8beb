// The fabric driver against the TransportDriver contract, several drivers in one process (their control
// links through an in-memory hub; the data through the real native data plane and provider).
import t, { type Test } from 'tap';
import type { DriverListener, MemberAddress } from '../../src/transport/driver.js';
import { fabricTransportSchema } from '../../src/transport/fabric/config.js';
import { FabricDriver } from '../../src/transport/fabric/fabric-driver.js';
import { createTransportDriver, parseTransport } from '../../src/transport/transport-choice.js';
import { addonReady, TEST_PROVIDERS, TEST_SHM_PREFIX, withDeadline } from './fixtures/harness.js';
import { MemoryControlHub } from './fixtures/memory-control.js';
import { messageBytes, type Sizes } from './fixtures/protocol.js';

interface Events {
  frames: Map<number, Uint8Array[]>;
  ups: Array<[number, number]>;
  downs: number[];
}

const address = (id: number): MemberAddress => ({ id, host: '127.0.0.1', port: 1 });

function driverConfig(provider: 'shm' | 'tcp' | 'net', extra: Record<string, unknown> = {}) {
  const { kind: _k, ...c } = fabricTransportSchema.parse({ kind: 'fabric', provider, shmPrefix: TEST_SHM_PREFIX, ringCapacityBytes: 64 * 1024, fragmentBytesMax: 16 * 1024, ...extra });
  return c;
}

/** Polls `cond` every few ms until true (bounded). */
async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  await withDeadline(
    new Promise<void>((resolve) => {
      const tick = () => (cond() ? resolve() : setTimeout(tick, 5));
      tick();
    }),
    ms,
    what,
  );
}

async function startMember(t: Test, hub: MemoryControlHub, id: number, provider: 'shm' | 'tcp' | 'net', extra: Record<string, unknown> = {}) {
  const events: Events = { frames: new Map(), ups: [], downs: [] };
  const listener: DriverListener = {
    frame: (from, frame) => {
      const list = events.frames.get(from) ?? [];
      list.push(frame);
      events.frames.set(from, list);
    },
    linkUp: (peer, incarnation) => events.ups.push([peer, incarnation]),
    linkDown: (peer) => events.downs.push(peer),
  };
  const control = hub.control(id);
  const driver = new FabricDriver({ selfId: id, config: driverConfig(provider, extra), control });
  t.teardown(() => driver.close());
  await driver.start(listener);
  return { id, driver, control, events };
}

/** Frame k of `from` to anyone: deterministic bytes, sent as up to three parts. */
function frameParts(from: number, k: number, sizes: Sizes): Uint8Array[] {
  const b = messageBytes(from, k, sizes);
  const a = Math.floor(b.length / 3);
  return [b.subarray(0, a), b.subarray(a, 2 * a), b.subarray(2 * a)];
}

t.test('transport config: tcp by default, fabric validated, fabric driver created', async (t) => {
  t.same(parseTransport(undefined), { kind: 'tcp' });
  const f = parseTransport({ kind: 'fabric', provider: 'shm' });
  t.equal(f.kind, 'fabric');
  t.throws(() => parseTransport({ kind: 'fabric', provider: 'sockets' }), { code: 'bad_parameter', message: /transport config: provider/ });
  t.throws(() => parseTransport({ kind: 'fabric', provider: 'tcp', ringCapacityBytes: 65536, fragmentBytesMax: 65536 }), /fragmentBytesMax/);
  t.throws(() => parseTransport({ kind: 'udp' }), { code: 'bad_parameter' });
  const hub = new MemoryControlHub();
  const tcp = hub.control(1);
  t.equal(createTransportDriver({ kind: 'tcp' }, { selfId: 1, tcpDriver: () => tcp }), tcp, 'kind tcp is the TCP driver itself');
});

if (addonReady(t)) {
  t.test('createTransportDriver builds a FabricDriver over the TCP driver', async (t) => {
    const hub = new MemoryControlHub();
    const d = createTransportDriver(parseTransport({ kind: 'fabric', provider: 'shm', shmPrefix: TEST_SHM_PREFIX }), { selfId: 1, tcpDriver: () => hub.control(1) });
    t.ok(d instanceof FabricDriver);
  });

  for (const provider of TEST_PROVIDERS) {
    t.test(`frames arrive whole and in push order, large ones fragmented (${provider}, 3 drivers)`, async (t) => {
      const hub = new MemoryControlHub();
      const ids = [1, 2, 3];
      const members = await Promise.all(ids.map((id) => startMember(t, hub, id, provider)));
      // Frames pushed before any link is up are kept and sent once it is.
      for (const m of members) m.driver.push(ids.filter((x) => x !== m.id), frameParts(m.id, 1, { list: [5000] }));
      for (const m of members) m.driver.setPeers(ids.map(address));
      await until(() => members.every((m) => m.events.ups.length === 2), 'all links up');
      for (const m of members) {
        t.same(m.events.ups.map(([p]) => p).sort(), ids.filter((x) => x !== m.id), `member ${m.id}: linkUp for both peers`);
        for (const [p, inc] of m.events.ups) t.equal(inc, hub.member(p)!.incarnation, `member ${m.id}: incarnation of ${p} passed through`);
      }
      // 200 more frames each, 0..200 KiB (fragments of 16 KiB through 64 KiB rings), 10 per turn.
      const sizes: Sizes = { randomMax: 200 * 1024 };
      const count = 200;
      for (let k = 2; k <= count + 1; k += 10) {
        for (const m of members) {
          for (let j = k; j < k + 10 && j <= count + 1; j++) m.driver.push(ids.filter((x) => x !== m.id), frameParts(m.id, j, j === 1 ? { list: [5000] } : sizes));
          m.driver.flush();
        }
        await new Promise((r) => setImmediate(r));
      }
      await until(() => members.every((m) => [...m.events.frames.values()].reduce((a, f) => a + f.length, 0) === 2 * (count + 1)), 'all frames');
      for (const m of members) {
        for (const from of ids.filter((x) => x !== m.id)) {
          const got = m.events.frames.get(from)!;
          let ok = got.length === count + 1;
          for (let k = 1; ok && k <= count + 1; k++) ok = Buffer.compare(Buffer.from(got[k - 1]!), messageBytes(from, k, k === 1 ? { list: [5000] } : sizes)) === 0;
          t.ok(ok, `member ${m.id}: ${count + 1} frames of ${from}, in order, byte for byte`);
        }
        t.same(m.events.downs, [], `member ${m.id}: no link went down`);
      }
      // Delivered frames are the core's: later traffic reusing the ring must not change them.
      const kept = members[0]!.events.frames.get(2)![0]!;
      t.equal(Buffer.compare(Buffer.from(kept), messageBytes(2, 1, { list: [5000] })), 0, 'an early frame is intact after the ring wrapped many times');
    });
  }

  t.test('a peer that goes away: linkDown once; frames pushed meanwhile wait for the next incarnation', async (t) => {
    const hub = new MemoryControlHub();
    const a = await startMember(t, hub, 1, 'shm');
    const b = await startMember(t, hub, 2, 'shm');
    a.driver.setPeers([address(1), address(2)]);
    b.driver.setPeers([address(1), address(2)]);
    await until(() => a.events.ups.length === 1 && b.events.ups.length === 1, 'link up');
    a.driver.push([2], [Buffer.from('before')]);
    a.driver.flush();
    await until(() => (b.events.frames.get(1)?.length ?? 0) === 1, 'first frame');
    await b.driver.close();
    await until(() => a.events.downs.length === 1, 'linkDown at the survivor');
    a.driver.push([2], [Buffer.from('while down')]); // kept until a link to 2 is up again (the contract)
    a.driver.flush();
    const b2 = await startMember(t, hub, 2, 'shm');
    b2.driver.setPeers([address(1), address(2)]);
    await until(() => a.events.ups.length === 2 && b2.events.ups.length === 1, 'link up again');
    t.equal(a.events.ups[1]![1], hub.member(2)!.incarnation, 'the new incarnation is reported');
    t.not(a.events.ups[1]![1], a.events.ups[0]![1], 'and differs from the old one');
    a.driver.push([2], [Buffer.from('after')]);
    a.driver.flush();
    await until(() => (b2.events.frames.get(1)?.length ?? 0) >= 2, 'frames to the new incarnation');
    const texts = b2.events.frames.get(1)!.map((f) => Buffer.from(f).toString());
    t.same(texts, ['while down', 'after'], 'the new incarnation gets what was pushed while down, then the rest, in order');
    t.same(a.events.downs, [2], 'exactly one linkDown');
  });

  t.test('the control link is not the data path: a flap is absorbed, a long outage ends the link', async (t) => {
    const hub = new MemoryControlHub();
    const a = await startMember(t, hub, 1, 'shm', { controlGraceMs: 300 });
    const b = await startMember(t, hub, 2, 'shm', { controlGraceMs: 300 });
    a.driver.setPeers([address(1), address(2)]);
    b.driver.setPeers([address(1), address(2)]);
    await until(() => a.events.ups.length === 1 && b.events.ups.length === 1, 'link up');
    // The TCP driver can drop and redial a connection (both sides dialed at once), even on one side only.
    for (let round = 1; round <= 3; round++) {
      hub.flapOneSide(round % 2 ? 1 : 2, round % 2 ? 2 : 1);
      await new Promise((r) => setTimeout(r, 20));
      a.driver.push([2], [Buffer.from(`a${round}`)]);
      b.driver.push([1], [Buffer.from(`b${round}`)]);
      a.driver.flush();
      b.driver.flush();
      await until(() => (b.events.frames.get(1)?.length ?? 0) === round && (a.events.frames.get(2)?.length ?? 0) === round, `frames after flap ${round}`);
    }
    await new Promise((r) => setTimeout(r, 400)); // longer than the grace
    t.same([a.events.downs, b.events.downs], [[], []], 'no linkDown for flaps of the control link');
    t.same([a.events.ups.length, b.events.ups.length], [1, 1], 'and no second linkUp');
    t.same(b.events.frames.get(1)!.map((f) => Buffer.from(f).toString()), ['a1', 'a2', 'a3'], '1 -> 2 kept flowing');
    t.same(a.events.frames.get(2)!.map((f) => Buffer.from(f).toString()), ['b1', 'b2', 'b3'], '2 -> 1 kept flowing');

    // A control link that stays down past the grace ends the fabric link; when it returns, a new one forms.
    a.driver.setPeers([address(1)]); // the hub takes the control link down on both sides; a also drops b
    await until(() => b.events.downs.length === 1, 'linkDown at b after the grace');
    t.same(a.events.downs, [], 'a dropped the peer itself (setPeers): no linkDown');
    a.driver.setPeers([address(1), address(2)]);
    await until(() => a.events.ups.length === 2 && b.events.ups.length === 2, 'a new link');
    a.driver.push([2], [Buffer.from('again')]);
    a.driver.flush();
    await until(() => (b.events.frames.get(1)?.length ?? 0) === 4, 'frame on the new link');
  });

  t.test('lost hellos are sent again until both sides are up', async (t) => {
    const hub = new MemoryControlHub();
    hub.drops.set('1>2', 3); // 1's first three hellos vanish (2 gets up first and must answer again)
    const a = await startMember(t, hub, 1, 'tcp', { helloRetryMs: 20 });
    const b = await startMember(t, hub, 2, 'tcp', { helloRetryMs: 20 });
    a.driver.setPeers([address(1), address(2)]);
    b.driver.setPeers([address(1), address(2)]);
    await until(() => a.events.ups.length === 1 && b.events.ups.length === 1, 'link up despite lost hellos');
    t.equal(hub.drops.get('1>2'), 0, 'the lost hellos were really sent');
    b.driver.push([1], [Buffer.from('x')]);
    b.driver.flush();
    await until(() => (a.events.frames.get(2)?.length ?? 0) === 1, 'frame');
  });

  t.test('frames over pendingBytesMax for a peer that is not up are dropped with a linkDown', async (t) => {
    const hub = new MemoryControlHub();
    const a = await startMember(t, hub, 1, 'shm', { pendingBytesMax: 1024 * 1024 });
    const chunk = new Uint8Array(300 * 1024);
    for (let i = 0; i < 3; i++) a.driver.push([2], [chunk]);
    t.same(a.events.downs, [], 'within the bound: kept');
    a.driver.push([2], [chunk]);
    t.same(a.events.downs, [2], 'over the bound: linkDown');
    const b = await startMember(t, hub, 2, 'shm');
    a.driver.setPeers([address(1), address(2)]);
    b.driver.setPeers([address(1), address(2)]);
    await until(() => a.events.ups.length === 1 && b.events.ups.length === 1, 'link up after the drop');
    await new Promise((r) => setTimeout(r, 50));
    t.same(b.events.frames.get(1) ?? [], [], 'nothing of the dropped stream arrives');
  });
}
