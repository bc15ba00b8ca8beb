import t from 'tap';
import { HybridClock } from '../../src/transport/hlc.js';
import { freshCarry, holdCarry, ShardMulticast, type MulticastLimits } from '../../src/transport/ordered-multicast.js';
import type { Delivered, ShardFrontiers } from '../../src/transport/ordered-shard.js';
import { makeVersion } from '../../src/transport/version.js';
import { FrameKind, frameKind } from '../../src/transport/wire.js';

const limits: MulticastLimits = {
  windowPayloads: 64,
  windowBytes: 1 << 20,
  maxPayloadBytes: 1 << 16,
  batchBytesMax: 4096,
  inlinePayloadBytesMax: 512,
  nullLookaheadMax: 1000,
  seqRolloverAt: 2 ** 31,
  joinerQueueBytesMax: 1 << 30,
};

/** Three members of one shard wired directly: frames queue per link and are handed over on pump(). */
function shard(ids: number[], view = 2, options: { joiners?: number[]; limits?: MulticastLimits } = {}) {
  const links: Array<{ from: number; to: number; frame: Uint8Array }> = [];
  const delivered = new Map<number, Delivered[]>();
  const frontiers = new Map<number, ShardFrontiers>();
  const writable = new Map<number, number>();
  let now = 1_000_000;
  const members = ids.map((id) => {
    delivered.set(id, []);
    writable.set(id, 0);
    return new ShardMulticast({
      view,
      shardIndex: 0,
      name: 'test/0/0',
      members: ids,
      selfId: id,
      limits: options.limits ?? limits,
      hlc: new HybridClock(),
      carry: options.joiners?.includes(id) ? holdCarry(freshCarry()) : freshCarry(),
      out: {
        push: (to, parts) => {
          const frame = Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
          for (const peer of to) links.push({ from: id, to: peer, frame });
        },
        deliver: (_s, batch) => delivered.get(id)!.push(...batch),
        frontiers: (_s, f) => frontiers.set(id, f),
        writable: () => writable.set(id, writable.get(id)! + 1),
      },
    });
  });
  const byId = new Map(ids.map((id, i) => [id, members[i]!]));
  /** Hands frames over until none is left (`holdBack`: frames that stay queued for a later pump). */
  function pump(rounds = 50, holdBack?: (l: { from: number; to: number; frame: Uint8Array }) => boolean) {
    for (let round = 0; round < rounds; round++) {
      now += 10;
      for (const m of members) m.flush(now);
      const batch = holdBack ? links.filter((l) => !holdBack(l)) : links.splice(0);
      if (holdBack) links.splice(0, links.length, ...links.filter((l) => holdBack(l)));
      if (batch.length === 0) return;
      for (const { from, to, frame } of batch) {
        const m = byId.get(to)!;
        const err = frameKind(frame) === FrameKind.data ? m.onData(frame) : m.onRow(ids.indexOf(from), frame);
        if (err) throw new Error(err);
      }
    }
  }
  /** Loses every frame `from` pushed that is not handed over yet. */
  const lose = (from: number) => links.splice(0, links.length, ...links.filter((l) => l.from !== from));
  return { members, byId, delivered, frontiers, writable, pump, lose, tick: () => members.forEach((m) => m.tick((now += 10))) };
}

const text = (d: Delivered) => Buffer.from(d.payload).toString();

t.test('all senders: every member delivers the same sequence, versions increase, round-robin order', async (t) => {
  const s = shard([10, 11, 12]);
  for (let k = 0; k < 5; k++) s.members.forEach((m, r) => t.ok(m.enqueue(Buffer.from(`m${r}-${k}`))));
  s.pump();
  const seqs = [...s.delivered.values()].map((ds) => ds.map(text));
  t.equal(seqs[0]!.length, 15);
  t.same(seqs[1], seqs[0]);
  t.same(seqs[2], seqs[0]);
  t.same(seqs[0]!.slice(0, 3), ['m0-0', 'm1-0', 'm2-0'], 'round robin across senders');
  const versions = s.delivered.get(10)!.map((d) => d.version);
  t.ok(versions.every((v, i) => i === 0 || v > versions[i - 1]!), 'versions strictly increase');
  t.equal(versions[0], makeVersion(2, 0));
  const stamps = s.delivered.get(11)!.map((d) => d.timestampUs);
  t.ok(stamps.every((v, i) => i === 0 || v >= stamps[i - 1]!), 'timestamps never decrease');
});

t.test('one sender: idle members send nulls so the sender is never stalled', async (t) => {
  const s = shard([1, 2, 3]);
  for (let round = 0; round < 4; round++) {
    for (let k = 0; k < 10; k++) t.ok(s.members[1]!.enqueue(Buffer.from(`x${round}-${k}`)));
    s.pump();
  }
  for (const id of [1, 2, 3]) t.equal(s.delivered.get(id)!.length, 40, `member ${id} delivered all`);
  t.same(s.delivered.get(3)!.map(text), s.delivered.get(1)!.map(text));
  t.ok(s.delivered.get(1)!.every((d) => d.sender === 2));
});

t.test('window: refuses when full, writable once delivered everywhere', async (t) => {
  const s = shard([1, 2, 3]);
  let accepted = 0;
  while (s.members[0]!.enqueue(Buffer.alloc(10))) accepted++;
  t.equal(accepted, limits.windowPayloads);
  s.pump();
  t.equal(s.writable.get(1), 1);
  t.ok(s.members[0]!.enqueue(Buffer.alloc(10)));
});

t.test('large payloads travel by reference, batches split at batchBytesMax', async (t) => {
  const s = shard([1, 2]);
  const big = Buffer.alloc(3000, 7);
  for (let k = 0; k < 5; k++) s.members[0]!.enqueue(big);
  s.members[0]!.enqueue(Buffer.from('tail'));
  s.pump();
  const got = s.delivered.get(2)!;
  t.equal(got.length, 6);
  t.ok(got.slice(0, 5).every((d) => d.payload.length === 3000 && d.payload[2999] === 7));
  t.equal(text(got[5]!), 'tail');
});

t.test('persisted and stability frontiers', async (t) => {
  const s = shard([1, 2, 3]);
  s.tick();
  s.pump();
  const before = s.frontiers.get(1)!.stabilityFrontierUs;
  t.ok(before > 0, 'stability frontier moves with heartbeats alone');
  s.members[0]!.enqueue(Buffer.from('a'));
  s.pump();
  const v = s.delivered.get(1)![0]!.version;
  s.tick();
  s.pump();
  const held = s.frontiers.get(2)!.stabilityFrontierUs;
  t.ok(held < s.delivered.get(1)![0]!.timestampUs, 'frontier stays below an unpersisted payload');
  for (const m of s.members) m.persisted(v);
  s.pump();
  t.equal(s.frontiers.get(3)!.persistedFrontier, v);
  s.tick();
  s.pump();
  t.ok(s.frontiers.get(2)!.stabilityFrontierUs >= s.delivered.get(1)![0]!.timestampUs, 'frontier passes it once persisted');
});

t.test('ragged trim: wedged members deliver exactly up to the trim and carry undelivered own payloads', async (t) => {
  const s = shard([1, 2, 3]);
  for (let k = 0; k < 3; k++) s.members.forEach((m, r) => m.enqueue(Buffer.from(`m${r}-${k}`)));
  s.pump();
  // Member 3 sends more, but only member 1 flushes its receipt before everyone wedges.
  s.members[2]!.enqueue(Buffer.from('late'));
  s.members[2]!.flush(9e9);
  s.members.forEach((m) => m.wedge());
  const counts = s.members.map((m) => m.receivedCounts());
  const trim = counts[0]!.map((_, r) => Math.min(...counts.map((c) => c[r]!)));
  for (const m of s.members) {
    t.ok(m.hasAll(trim));
    m.deliverTrim(trim);
  }
  const seqs = [...s.delivered.values()].map((ds) => ds.map(text));
  t.same(seqs[1], seqs[0]);
  t.same(seqs[2], seqs[0]);
  t.notOk(seqs[0]!.includes('late'), 'a payload not received by everyone is not delivered');
  t.same(s.members[2]!.carry().resend.map((p) => Buffer.from(p).toString()), ['late'], 'sender re-sends it next view');
});

t.test('ragged trim: own payloads beyond my trim are re-sent even when another sender trims further ahead', async (t) => {
  const s = shard([1, 2, 3]);
  for (let k = 0; k < 3; k++) s.members.forEach((m, r) => m.enqueue(Buffer.from(`m${r}-${k}`)));
  s.pump();
  // Member 1's next payload reaches nobody (nor does anything it sends after it), while member 3 keeps
  // sending and members 1 and 2 receive that: member 3's trim ends well past member 1's.
  s.members[0]!.enqueue(Buffer.from('mine'));
  s.members[0]!.flush(9e9);
  s.lose(1);
  for (let k = 0; k < 3; k++) {
    s.members[2]!.enqueue(Buffer.from(`ahead-${k}`));
    s.members[2]!.flush(9e9);
    for (const m of s.members) m.flush(9e9);
    s.lose(1);
    s.pump(1);
    s.lose(1);
  }
  s.members.forEach((m) => m.wedge());
  const counts = s.members.map((m) => m.receivedCounts());
  const trim = counts[0]!.map((_, r) => Math.min(...counts.map((c) => c[r]!)));
  t.ok(trim[2]! > trim[0]! + 1, `member 3 trims ahead of member 1 (trim ${trim.join(',')})`);
  for (const m of s.members) m.deliverTrim(trim);
  const seqs = [...s.delivered.values()].map((ds) => ds.map(text));
  t.same(seqs[1], seqs[0]);
  t.same(seqs[2], seqs[0]);
  t.notOk(seqs[0]!.includes('mine'), 'the payload nobody else received is not delivered');
  // The others' rows now say delivered = the trim's end, which lies past 'mine': it must stay in flight.
  s.pump();
  t.same(s.members[0]!.carry().resend.map((p) => Buffer.from(p).toString()), ['mine'], 'its sender re-sends it next view');
});

t.test('a joiner at joinerQueueBytesMax stops delivering, which pauses the senders until its state is installed', async (t) => {
  const small: MulticastLimits = { ...limits, windowPayloads: 16, joinerQueueBytesMax: 1000 };
  const s = shard([1, 2, 3], 2, { joiners: [3], limits: small });
  const joiner = s.byId.get(3)!;
  let sent = 0;
  // Member 1 streams 100-byte payloads as fast as its window lets it.
  for (let round = 0; round < 40; round++) {
    while (sent < 200 && s.members[0]!.enqueue(Buffer.alloc(100, sent % 256))) sent++;
    s.pump();
  }
  t.ok(joiner.awaitingState && joiner.holdFull, 'the joiner is full');
  t.ok(joiner.heldBytes >= 1000 && joiner.heldBytes <= 1000 + small.windowPayloads * 100, `held ${joiner.heldBytes} bytes: the limit plus at most one window`);
  t.ok(sent < 200, `the sender was paused after ${sent} payloads`);
  t.equal(s.delivered.get(1)!.length, sent, 'the others delivered everything sent so far');
  t.equal(s.delivered.get(3)!.length, 0, 'the joiner delivered nothing (it holds)');

  // The state (empty here) is installed: the joiner hands its held deliveries over, and the stream resumes.
  joiner.releaseHeld(-1, -1, 0);
  for (let round = 0; round < 60 && (sent < 200 || s.delivered.get(3)!.length < 200); round++) {
    while (sent < 200 && s.members[0]!.enqueue(Buffer.alloc(100, sent % 256))) sent++;
    s.pump();
  }
  t.equal(sent, 200, 'the sender finished');
  t.same(
    s.delivered.get(3)!.map((d) => d.version),
    s.delivered.get(1)!.map((d) => d.version),
    'the joiner delivered the same versions as the others, in order',
  );
  t.equal(s.delivered.get(3)!.length, 200);
});

t.test('a member waiting for its state holds the persistence frontier back until it has persisted', async (t) => {
  const s = shard([1, 2, 3], 2, { joiners: [3] });
  for (let k = 0; k < 5; k++) t.ok(s.members[0]!.enqueue(Buffer.from(`w${k}`)));
  s.pump();
  const last = s.delivered.get(1)!.at(-1)!.version;
  t.equal(s.delivered.get(2)!.at(-1)!.version, last, 'delivered at the complete members while member 3 holds');
  for (const id of [1, 2]) s.byId.get(id)!.persisted(last);
  s.pump();
  t.not(s.frontiers.get(1)?.persistedFrontier, last, 'not persisted everywhere: member 3 has only held it');
  const joiner = s.byId.get(3)!;
  joiner.releaseHeld(-1, -1, 0);
  s.pump();
  t.equal(s.delivered.get(3)!.length, 5, 'the joiner applied what it held');
  joiner.persisted(last);
  s.pump();
  t.equal(s.frontiers.get(1)!.persistedFrontier, last, 'persisted everywhere once the joiner synced it');
});

t.test('a joiner released at a version it has not delivered yet does not hand those messages over again', async (t) => {
  const s = shard([1, 2, 3], 2, { joiners: [3] });
  for (let k = 0; k < 4; k++) t.ok(s.members[0]!.enqueue(Buffer.from(`p${k}`)));
  // member 3 gets the data but no rows: it cannot tell the messages are stable, members 1 and 2 can
  const rowTo3 = (l: { to: number; frame: Uint8Array }) => l.to === 3 && frameKind(l.frame) !== FrameKind.data;
  s.pump(50, rowTo3);
  t.same(s.delivered.get(1)!.map(text), ['p0', 'p1', 'p2', 'p3']);
  const joiner = s.byId.get(3)!;
  t.equal(s.delivered.get(3)!.length, 0);
  t.notOk(joiner.rowSeen(0), 'no row of member 1 arrived at member 3');
  // its state transfer (from member 1, as of what 1 delivered) is installed before the rows arrive
  const donor = s.byId.get(1)!;
  joiner.releaseHeld(donor.deliveredVersion, donor.lastPayloadVersion, donor.lastTimestampUs);
  s.pump();
  t.ok(joiner.rowSeen(0), 'the rows arrived');
  t.same(s.delivered.get(3)!.map(text), [], 'the installed state holds p0..p3: not handed over again');
  t.ok(s.members[1]!.enqueue(Buffer.from('after')));
  s.pump();
  t.same(s.delivered.get(3)!.map(text), ['after'], 'later messages are delivered once');
  t.same(s.delivered.get(1)!.map(text), ['p0', 'p1', 'p2', 'p3', 'after']);
});
