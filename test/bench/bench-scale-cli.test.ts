import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isOurs } from '../../scripts/peers/process.js';
import { readState, stopPeers } from '../../scripts/peers/state.js';
import { requirePeers } from './peers-available.js';
import { runScript as node } from './run-script.js';

t.test('bench scale over etcd writes the CSV and a chart per curve', async (t) => {
  if (!requirePeers(t)) return;
  const dir = t.testdir();
  t.teardown(async () => {
    const left = readState(dir);
    if (left) await stopPeers(left);
  });
  await node('scripts/peers/main.ts', ['start', '--only', 'etcd', '--dir', dir], 60_000);
  const state = readState(dir)!;
  t.equal(state.redis, undefined, '--only etcd starts no Redis');

  const out = join(dir, 'scale');
  const scale = await node('bench/main.ts', [
    'scale', '--targets', 'etcd', '--versions', '5,20,60', '--versions-max-peer', '20', '--key-counts', '10,40', '--size', '100,1KiB',
    '--replicas', '1,3', '--replicas-batch', '1,10', '--replicas-concurrency', '4', '--keys', '40',
    '--seconds', '0.3', '--warmup', '0.1', '--runs', '1', '--out', out, '--peers-dir', dir, '--no-progress',
  ], 110_000);
  t.match(scale.stdout, /wrote /);
  t.match(scale.stdout, /points not measured:\n {2}history etcd x=60: skipped: above --versions-max-peer 20/);
  const csv = readFileSync(`${out}.csv`, 'utf8').trim().split('\n');
  t.equal(csv[0], 'curve,target,x,batch,p50_ms,p99_ms,ops_per_s,runs,errors,load_1m,durability,note');
  const rows = csv.slice(1).map((l) => l.split(','));
  t.same(rows.map((r) => r.slice(0, 4).join(' ')), [
    'history etcd 5 1', 'history etcd 20 1', 'history etcd 60 1', 'keys etcd 10 1', 'keys etcd 40 1', 'size etcd 100 1', 'size etcd 1024 1',
    'replicas etcd 1 1', 'replicas etcd 1 10', 'replicas etcd 3 1', 'replicas etcd 3 10',
  ]);
  t.ok(rows.every((r) => r[8] === '0'), 'no errors at any point');
  t.equal(rows.filter((r) => r[6] === '').map((r) => r.slice(0, 3).join(' ')).join(), 'history etcd 60', 'only the point above the cap has no figures');
  t.match(scale.stderr, /the peers running from .* are not 1 replicas each: starting others/, 'etcd of 1 member for the replicas curve, started by the bench');
  for (const curve of ['history', 'keys', 'size', 'replicas']) {
    t.match(readFileSync(`${out}-${curve}.svg`, 'utf8'), /^<svg/);
    t.ok(readFileSync(`${out}-${curve}.png`).subarray(1, 4).toString() === 'PNG', `${curve} PNG`);
  }

  await node('scripts/peers/main.ts', ['stop', '--dir', dir], 60_000);
  t.ok(state.etcd!.members.every((p) => !isOurs(p)), 'stopped');
});
