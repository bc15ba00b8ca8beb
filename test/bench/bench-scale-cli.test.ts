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
    'scale', '--targets', 'etcd', '--versions', '5,20', '--key-counts', '10,40', '--size', '100,1KiB',
    '--seconds', '0.3', '--warmup', '0.1', '--runs', '1', '--out', out, '--peers-dir', dir,
  ], 90_000);
  t.match(scale.stdout, /wrote /);
  const csv = readFileSync(`${out}.csv`, 'utf8').trim().split('\n');
  t.equal(csv[0], 'curve,target,x,p50_ms,p99_ms,ops_per_s,runs,errors,load_1m');
  t.same(csv.slice(1).map((l) => l.split(',').slice(0, 3).join(',')), ['history,etcd,5', 'history,etcd,20', 'keys,etcd,10', 'keys,etcd,40', 'size,etcd,100', 'size,etcd,1024']);
  t.ok(csv.slice(1).every((l) => l.split(',')[7] === '0'), 'no errors at any point');
  for (const curve of ['history', 'keys', 'size']) {
    t.match(readFileSync(`${out}-${curve}.svg`, 'utf8'), /^<svg/);
    t.ok(readFileSync(`${out}-${curve}.png`).subarray(1, 4).toString() === 'PNG', `${curve} PNG`);
  }

  await node('scripts/peers/main.ts', ['stop', '--dir', dir], 60_000);
  t.ok(state.etcd!.members.every((p) => !isOurs(p)), 'stopped');
});
