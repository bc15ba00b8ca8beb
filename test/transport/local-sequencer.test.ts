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

t.test('requestProgress skips at most skipAheadMax past the last version, and never past the rollover point', async (t) => {
  const seq = new LocalSequencer({ name: 'p/0/0', memberId: 1, view: 3, clock: () => 1, lastTimestampUs: 0, windowPayloads: 10, skipAheadMax: 100, seqRolloverAt: 1000 });
  const delivered: Delivered[][] = [];
  seq.setListener({ deliver: (b) => delivered.push([...b]), frontiers: () => undefined, writable: () => undefined });
  seq.requestProgress(makeVersion(3, 2 ** 32 - 1));
  t.equal(seq.frontiers.deliveredVersion, makeVersion(3, 0) - 1, 'a read far ahead moves nothing (it waits, then 425)');
  seq.requestProgress(makeVersion(3, 100));
  t.equal(seq.frontiers.deliveredVersion, makeVersion(3, 0) - 1, 'skipAheadMax past the next version is too far');
  seq.requestProgress(makeVersion(3, 99));
  t.equal(seq.frontiers.deliveredVersion, makeVersion(3, 99), 'within skipAheadMax the stream skips ahead');
  seq.send(new Uint8Array(1));
  await turn();
  t.equal(delivered[0]![0]!.version, makeVersion(3, 100));
});

t.test('past seqRolloverAt the sequence continues in a fresh view from the node', async (t) => {
  const views: number[] = [];
  let release: (() => void) | null = null;
  const seq = new LocalSequencer({
    name: 'p/0/0', memberId: 1, view: 3, clock: () => 1, lastTimestampUs: 0, windowPayloads: 100, seqRolloverAt: 4,
    nextView: async () => {
      await new Promise<void>((r) => (release = r));
      views.push(7);
      return 7;
    },
  });
  const delivered: Delivered[] = [];
  seq.setListener({ deliver: (b) => delivered.push(...b), frontiers: () => undefined, writable: () => undefined });
  for (let i = 0; i < 6; i++) seq.send(new Uint8Array([i]));
  await turn();
  t.same(delivered.map((d) => d.version), [0, 1, 2, 3, 4, 5].map((s) => makeVersion(3, s)), 'the batch that crosses the point stays in the old view');
  seq.send(new Uint8Array([6]));
  await turn();
  t.equal(delivered[6]!.version, makeVersion(3, 6), 'until the node has reserved the next view, the old one goes on');
  t.equal(views.length, 0, 'one request for a view at a time');
  release!();
  await turn();
  t.equal(seq.view, 7);
  t.equal(seq.frontiers.deliveredVersion, makeVersion(7, 0) - 1, 'the old view is closed');
  t.equal(seq.frontiers.persistedFrontier, makeVersion(3, 0) - 1, 'its batches are not persisted yet');
  seq.send(new Uint8Array([7]));
  await turn();
  t.equal(delivered[7]!.version, makeVersion(7, 0), 'the next payload opens the new view');
  seq.reportPersisted(makeVersion(3, 6));
  t.equal(seq.frontiers.persistedFrontier, makeVersion(3, 6), 'persistence is still reported batch by batch');
  seq.reportPersisted(makeVersion(7, 0));
  t.equal(seq.frontiers.persistedFrontier, makeVersion(7, 0));
});

t.test('a failed view reservation is reported and tried again on the next batch', async (t) => {
  let calls = 0;
  const errors: string[] = [];
  const seq = new LocalSequencer({
    name: 'p/0/0', memberId: 1, view: 3, clock: () => 1, lastTimestampUs: 0, windowPayloads: 100, seqRolloverAt: 1,
    nextView: async () => {
      calls++;
      if (calls === 1) throw new Error('disk full');
      return 4;
    },
    onRolloverError: (e) => errors.push(e.message),
  });
  const delivered: Delivered[] = [];
  seq.setListener({ deliver: (b) => delivered.push(...b), frontiers: () => undefined, writable: () => undefined });
  seq.send(new Uint8Array(1));
  seq.send(new Uint8Array(1));
  await turn();
  await turn();
  t.same(errors, ['disk full']);
  seq.send(new Uint8Array(1));
  await turn();
  await turn();
  t.equal(calls, 2);
  t.equal(seq.view, 4);
  seq.send(new Uint8Array(1));
  await turn();
  t.equal(delivered[3]!.version, makeVersion(4, 0));
});
