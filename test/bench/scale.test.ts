import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CommanderError } from 'commander';
import {
  defaultReplicasTargets, formatScale, historyCurve, keysCurve, newestRoundAtRef, parseScaleOptions, replicasCurve, scaleCommand,
  sizeCurve, skippedPoint, writeScaleOutputs, type PreloadStat, type ScaleOptions, type ScalePoint,
} from '../../bench/scale.js';
import { MemoryTarget, VersionedMemoryTarget } from './memory-target.js';

const parse = (argv: string[]) => parseScaleOptions(argv, scaleCommand().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} }));

t.test('defaults: the ranges of the issue, per-peer caps, and the replicas curve', async (t) => {
  const o = parse([]);
  t.same(o.curves, ['history', 'keys', 'size', 'replicas']);
  t.same(o.versions, [10, 100, 1000, 10_000, 100_000, 1_000_000]);
  t.same(o.keyCounts, [1000, 10_000, 100_000, 1_000_000, 10_000_000]);
  t.equal(o.versionsMaxPeer, 10_000);
  t.equal(o.keysMaxPeer, 1_000_000);
  t.equal(o.valueBytes, 1024);
  t.equal(o.keysValueBytes, 100, 'small values for the keys curve');
  t.equal(o.preloadBatch, 2000);
  t.same(o.replicaCounts, [1, 3, 5]);
  t.same(o.replicasBatches, [1, 100]);
  t.equal(o.replicasSizeBytes, 1024);
  t.equal(o.replicasConcurrency, 64);
  t.same(o.targets, ['squall', 'etcd', 'redis']);
  t.same(o.replicasTargets, ['squall', 'squall-delivered', 'etcd', 'redis'], 'delivered durability next to persisted');
  t.equal(o.progress, true);
});

t.test('narrowing options', async (t) => {
  const o = parse([
    '--targets', 'squall', '--curves', 'replicas,history', '--versions', '1000,10', '--key-counts', '5000,50', '--keys-value-size', '16',
    '--versions-max-peer', '500', '--keys-max-peer', '2000', '--preload-batch', '10000', '--replicas', '5,1', '--replicas-batch', '1,1000',
    '--replicas-size', '4KiB', '--replicas-concurrency', '16', '--no-progress',
  ]);
  t.same(o.curves, ['history', 'replicas'], 'replicas runs last (it opens its own targets per point)');
  t.same(o.versions, [10, 1000], 'points ascend');
  t.same(o.keyCounts, [50, 5000]);
  t.equal(o.keysValueBytes, 16);
  t.equal(o.versionsMaxPeer, 500);
  t.equal(o.keysMaxPeer, 2000);
  t.equal(o.preloadBatch, 10_000);
  t.same(o.replicaCounts, [1, 5]);
  t.same(o.replicasBatches, [1, 1000]);
  t.equal(o.replicasSizeBytes, 4096);
  t.equal(o.replicasConcurrency, 16);
  t.same(o.replicasTargets, ['squall', 'squall-delivered']);
  t.equal(o.progress, false);
  t.same(parse(['--replicas-targets', 'etcd,squall']).replicasTargets, ['etcd', 'squall'], 'given explicitly');
  t.same(defaultReplicasTargets(['etcd', 'squall-delivered', 'squall']), ['etcd', 'squall-delivered', 'squall'], 'not added twice');
});

t.test('bad values are refused with a commander error', async (t) => {
  for (const argv of [['--curves', 'history,nosuch'], ['--replicas', '0'], ['--replicas-targets', 'nosuch'], ['--replicas-batch', '1.5'], ['--keys-value-size', '1XB'], ['--versions-max-peer', '-1']]) {
    t.throws(() => parse(argv), CommanderError, argv.join(' '));
  }
});

t.test('the version a read at a ref must return: the newest written at that ref', async (t) => {
  t.same([...newestRoundAtRef([7, 3, 9], false)!], [0, 1, 2], 'unique refs (etcd revisions), in any order');
  t.same([...newestRoundAtRef([1, 1, 1, 2, 2, 3], true)!], [2, 2, 2, 4, 4, 5], 'shared refs written in order (Squall batches): the last');
  t.equal(newestRoundAtRef([1, 2, 1], false), null, 'shared refs, order unknown');
});

function options(overrides: Partial<ScaleOptions>): ScaleOptions {
  return { ...parse(['--runs', '1', '--seconds', '0.05', '--warmup', '0.01', '--no-progress']), ...overrides };
}

function io() {
  const lines: string[] = [];
  return { lines, io: { log: (l: string) => lines.push(l), progress: null } };
}

t.test('history curve: one key\'s versions in batches, checked reads, and peers capped', async (t) => {
  const o = options({ versions: [5, 40, 300], valueBytes: 64, preloadBatch: 16, versionsMaxPeer: 40 });
  const preloads: PreloadStat[] = [];
  const batched = new VersionedMemoryTarget('squall');
  const { io: out } = io();
  const points = await historyCurve({ o, io: out, preloads }, batched);
  t.same(points.map((p) => [p.x, p.note, p.errors]), [[5, '', 0], [40, '', 0], [300, '', 0]], 'every point measured, every read right');
  t.ok(points.every((p) => p.ops_per_s! > 0));
  t.equal(batched.history.size, 1, 'one key');
  t.equal(batched.history.values().next().value!.length, 300, 'with every version');
  t.equal(batched.requests, 1 + 3 + 17, 'batches of at most 16 versions');
  t.same(preloads.map((p) => [p.curve, p.target, p.puts]), [['history', 'squall', 5], ['history', 'squall', 35], ['history', 'squall', 260]]);
  t.match(preloads[0]!.how, /batches of 16 versions, one at a time/);

  const peer = new MemoryTarget('etcd');
  const { io: out2, lines } = io();
  const peerPoints = await historyCurve({ o, io: out2, preloads }, peer);
  t.same(peerPoints.map((p) => [p.x, p.errors]), [[5, 0], [40, 0], [300, 0]]);
  t.equal(peerPoints[2]!.ops_per_s, null, 'above the cap: no figures');
  t.match(peerPoints[2]!.note, /skipped: above --versions-max-peer 40 .*one put per version; at the .* puts\/s of its preload here, 300 would take about/);
  t.match(lines.join('\n'), /history etcd x=300: skipped/);
  t.equal(peer.revision, 40, 'nothing written beyond the cap');
});

t.test('history curve: a target that answers the wrong version shows errors', async (t) => {
  const o = options({ versions: [20], valueBytes: 16 });
  const points = await historyCurve({ o, io: io().io, preloads: [] }, new MemoryTarget('memory', {}, true));
  t.ok(points[0]!.errors > 0);
});

t.test('keys curve: keys in batches within the target\'s limits, peers capped, targets without history skipped', async (t) => {
  const o = options({ keyCounts: [100, 1000, 3000], keysValueBytes: 8, preloadBatch: 64, keysMaxPeer: 1000 });
  const preloads: PreloadStat[] = [];
  const squall = new MemoryTarget('squall', { batchEntriesMax: 50 });
  const points = await keysCurve({ o, io: io().io, preloads }, squall);
  t.same(points.map((p) => [p.x, p.note, p.errors]), [[100, '', 0], [1000, '', 0], [3000, '', 0]]);
  t.equal(squall.history.size, 3000);
  t.equal(squall.revision, 2 + 18 + 40, 'batches of 50 (the target limit, below --preload-batch)');
  t.match(preloads[0]!.how, /batches of 50 keys/);

  const etcd = new MemoryTarget('etcd');
  const capped = await keysCurve({ o, io: io().io, preloads }, etcd);
  t.same(capped.map((p) => p.note === ''), [true, true, false]);
  t.match(capped[2]!.note, /above --keys-max-peer 1,000/);
  t.equal(etcd.history.size, 1000);

  const { PlainMemoryTarget } = await import('./memory-target.js');
  const none = await keysCurve({ o, io: io().io, preloads }, new PlainMemoryTarget('redis'));
  t.same(none.map((p) => p.note), Array(3).fill('skipped: no reads at a past version'));
});

t.test('size curve: sizes over the target\'s request limit are skipped points', async (t) => {
  const o = options({ sizesBytes: [100, 64 * 1024] });
  const points = await sizeCurve({ o, io: io().io, preloads: [] }, new MemoryTarget('memory', { requestBytesMax: 32 * 1024 }));
  t.equal(points[0]!.note, '');
  t.equal(points[0]!.durability, 'memory only');
  t.match(points[1]!.note, /skipped: n\/a: request > 32 KiB/);
});

t.test('replicas curve with --url: Squall cannot be resized, its points say so', async (t) => {
  const o = options({ url: 'http://127.0.0.1:1', replicasTargets: ['squall', 'squall-delivered'], replicaCounts: [1, 3], replicasBatches: [1, 100] });
  const points = await replicasCurve(o, io().io);
  t.equal(points.length, 2 * 2 * 2);
  t.ok(points.every((p) => p.ops_per_s === null && /--url given/.test(p.note)));
  t.same(points.filter((p) => p.x === 3).map((p) => [p.target, p.batch]), [['squall', 1], ['squall', 100], ['squall-delivered', 1], ['squall-delivered', 100]]);
});

t.test('outputs: CSV with every point and why some were not measured, charts of the measured ones', async (t) => {
  const dir = t.testdir();
  const measured = (curve: ScalePoint['curve'], target: string, x: number, batch = 1): ScalePoint => ({
    ...skippedPoint(curve, target, x, '', batch), p50_ms: 1, p99_ms: 2, ops_per_s: 1000 * x * batch, runs: 1, load_1m: 1, durability: 'persisted',
  });
  const points = [
    measured('history', 'squall', 10), measured('history', 'squall', 1000), skippedPoint('history', 'etcd', 1000, 'skipped: above --versions-max-peer 100'),
    measured('replicas', 'squall', 1), measured('replicas', 'squall', 3), measured('replicas', 'squall-delivered', 1, 100), measured('replicas', 'squall-delivered', 3, 100),
  ];
  const o = options({ out: join(dir, 'scale'), curves: ['history', 'keys', 'replicas'] });
  const files = await writeScaleOutputs(points, o);
  t.same(files.map((f) => f.slice(dir.length + 1)), ['scale.csv', 'scale-history.svg', 'scale-history.png', 'scale-replicas.svg', 'scale-replicas.png'], 'no chart for a curve without points');
  const csv = readFileSync(join(dir, 'scale.csv'), 'utf8').trim().split('\n');
  t.equal(csv[0], 'curve,target,x,batch,p50_ms,p99_ms,ops_per_s,runs,errors,load_1m,durability,note');
  t.equal(csv[3], 'history,etcd,1000,1,,,,0,0,,,skipped: above --versions-max-peer 100');
  t.match(readFileSync(join(dir, 'scale-replicas.svg'), 'utf8'), /squall-delivered ×100/);
  t.ok(existsSync(join(dir, 'scale-replicas.png')));

  const text = formatScale(points, [{ curve: 'history', target: 'squall', puts: 1000, seconds: 2, putsPerS: 500, how: 'batches of 1000 versions, one at a time' }]);
  t.match(text, /points not measured:\n {2}history etcd x=1,000: skipped: above --versions-max-peer 100/);
  t.match(text, /replicas  squall-delivered ×100 +3/);
  t.match(text, /replicas squall-delivered x=3: persisted/);
  t.match(text, /preloads:\n.*\n.*\nhistory +squall +1,000 +2\.0 +500 +batches of 1000 versions/);
});
