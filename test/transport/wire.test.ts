import t from 'tap';
import { FailureDetector } from '../../src/transport/failure-detector.js';
import { decodeMsgFrame, encodeMsgFrame, FrameKind, frameKind, frameShard, frameView, readU53, writeU53 } from '../../src/transport/wire.js';

t.test('u53 round-trips -1..2^53-2, including versions', async (t) => {
  const b = new Uint8Array(8);
  for (const v of [-1, 0, 1, 2 ** 32 - 1, 2 ** 32, 7 * 2 ** 32 + 5, 2 ** 53 - 2]) {
    writeU53(b, 0, v);
    t.equal(readU53(b, 0), v);
  }
});

t.test('msgpack frames carry kind, shard, view and the value (binary included)', async (t) => {
  const frame = encodeMsgFrame(FrameKind.msg, 3, 0x123456, { t: 'x', bytes: new Uint8Array([1, 2, 3]) });
  t.equal(frameKind(frame), FrameKind.msg);
  t.equal(frameShard(frame), 3);
  t.equal(frameView(frame), 0x123456);
  const v = decodeMsgFrame(frame) as { t: string; bytes: Uint8Array };
  t.equal(v.t, 'x');
  t.same([...v.bytes], [1, 2, 3]);
});

t.test('failure detector: silence for missed × period suspects; own starvation is not held against others', async (t) => {
  const d = new FailureDetector(100, 5);
  d.watch([2, 3], 0);
  let now = 0;
  const step = (ms: number, heard: number[] = []) => {
    now += ms * 1000;
    for (const p of heard) d.heard(p);
    return d.tick(now);
  };
  for (let i = 0; i < 4; i++) t.same(step(100, [2, 3]), []);
  const out: number[] = [];
  for (let i = 0; i < 6; i++) out.push(...step(100, [2]));
  t.same(out, [3], 'member 3 suspected after 500 ms of silence, once');
  t.same(step(100, []), [], 'not reported twice');
  // This member was starved for 3 s: its own tick gap is not counted against member 2.
  t.same(step(3000, []), []);
  t.same(step(100, [2]), []);
  // A member publishing a longer period gets a longer budget.
  const e = new FailureDetector(100, 5);
  e.watch([4], 0);
  e.setPeriod(4, 1000);
  let got: number[] = [];
  for (let ms = 100; ms <= 4000; ms += 100) got = got.concat(e.tick(ms * 1000));
  t.same(got, [], 'silent 4 s but its own period is 1 s (budget 5 s)');
});
