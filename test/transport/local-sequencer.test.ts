import t from 'tap';
import { LocalSequencer } from '../../src/transport/local-sequencer.js';
import type { Delivered, ShardFrontiers } from '../../src/transport/ordered-shard.js';
import { makeVersion, seqOf, viewOf } from '../../src/transport/version.js';

function setup(clockStart: number, window = 100) {
  let now = clockStart;
  const seq = new LocalSequencer({ name: 'persistent/0/0', memberId: 7, view: 3, clock: () => now, lastTimestampUs: 0, windowPayloads: window });
  const delivered: Delivered[][] = [];
  const frontiers: ShardFrontiers[] = [];
  let writable = 0;
  seq.setListener({ deliver: (b) => delivered.push([...b]), frontiers: (f) => frontiers.push(f), writable: () => writable++ });
  return { seq, delivered, frontiers, setNow: (us: number) => (now = us), writableCount: () => writable };
}

const turn = () => new Promise((r) => setImmediate(r));

t.test('payloads sent in one turn are delivered as one batch with increasing versions and one timestamp', async (t) => {
  const { seq, delivered } = setup(1_000_000);
  for (let i = 0; i < 5; i++) t.ok(seq.send(new Uint8Array([i])));
  t.equal(delivered.length, 0, 'nothing delivered before the turn ends');
  await turn();
  t.equal(delivered.length, 1);
  const batch = delivered[0]!;
  t.same(batch.map((d) => d.payload[0]), [0, 1, 2, 3, 4]);
  t.same(batch.map((d) => d.version), [0, 1, 2, 3, 4].map((s) => makeVersion(3, s)));
  t.ok(batch.every((d) => d.timestampUs === 1_000_000 && d.sender === 7));
  t.equal(viewOf(batch[4]!.version), 3);
  t.equal(seqOf(batch[4]!.version), 4);
});

t.test('timestamps never decrease when the clock goes back', async (t) => {
  const { seq, delivered, setNow } = setup(5_000_000);
  seq.send(new Uint8Array(1));
  await turn();
  setNow(4_000_000);
  seq.send(new Uint8Array(1));
  await turn();
  t.equal(delivered[1]![0]!.timestampUs, 5_000_000);
  t.ok(delivered[1]![0]!.version > delivered[0]![0]!.version);
});

t.test('the window refuses payloads and reports writable after delivery', async (t) => {
  const { seq, writableCount } = setup(1, 2);
  t.ok(seq.send(new Uint8Array(1)));
  t.ok(seq.send(new Uint8Array(1)));
  t.notOk(seq.send(new Uint8Array(1)), 'third payload refused');
  await turn();
  t.equal(writableCount(), 1);
  t.ok(seq.send(new Uint8Array(1)));
});

t.test('frontiers: stability holds at the oldest unpersisted batch, then follows the clock', async (t) => {
  const { seq, setNow } = setup(100);
  seq.send(new Uint8Array(1));
  await turn();
  setNow(200);
  seq.send(new Uint8Array(1));
  await turn();
  setNow(300);
  t.equal(seq.frontiers.deliveredVersion, makeVersion(3, 1));
  t.equal(seq.frontiers.persistedFrontier, makeVersion(3, 0) - 1, 'earlier views count as persisted');
  t.equal(seq.frontiers.stabilityFrontierUs, 100);
  seq.reportPersisted(makeVersion(3, 0));
  t.equal(seq.frontiers.stabilityFrontierUs, 200);
  seq.reportPersisted(makeVersion(3, 1));
  t.equal(seq.frontiers.persistedFrontier, makeVersion(3, 1));
  t.equal(seq.frontiers.stabilityFrontierUs, 300);
  t.throws(() => seq.reportPersisted(makeVersion(3, 9)), /beyond delivered/);
});

t.test('requestProgress jumps the sequence like a null message', async (t) => {
  const { seq, delivered } = setup(100);
  seq.send(new Uint8Array(1));
  await turn();
  seq.reportPersisted(makeVersion(3, 0));
  seq.requestProgress(makeVersion(3, 10));
  t.equal(seq.frontiers.deliveredVersion, makeVersion(3, 10));
  t.equal(seq.frontiers.persistedFrontier, makeVersion(3, 10), 'a null needs no persistence');
  seq.requestProgress(makeVersion(4, 0));
  t.equal(seq.frontiers.deliveredVersion, makeVersion(3, 10), 'a later view is out of reach');
  seq.send(new Uint8Array(1));
  await turn();
  t.equal(delivered[1]![0]!.version, makeVersion(3, 11), 'the next payload comes after the null');
  t.equal(seq.frontiers.persistedFrontier, makeVersion(3, 10));
  seq.reportPersisted(makeVersion(3, 11));
  t.equal(seq.frontiers.persistedFrontier, makeVersion(3, 11));
});
