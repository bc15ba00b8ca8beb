import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isOurs } from '../../scripts/peers/process.js';
import { readState, stopPeers } from '../../scripts/peers/state.js';
import type { BenchRow } from '../../bench/target.js';
import { requirePeers } from './peers-available.js';
import { runScript as node } from './run-script.js';

t.test('peers CLI start, bench kv against etcd and redis, peers CLI stop', async (t) => {
  if (!requirePeers(t)) return;
  const dir = t.testdir();
  t.teardown(async () => {
    const left = readState(dir);
    if (left) await stopPeers(left);
  });

  const started = await node('scripts/peers/main.ts', ['start', '--dir', dir], 60_000);
  t.match(started.stdout, /etcd\s+http:\/\/127\.0\.0\.1:\d+/);
  const state = readState(dir)!;
  t.ok(state, 'state file written');
  const status = await node('scripts/peers/main.ts', ['status', '--dir', dir], 30_000);
  t.equal(status.stdout.match(/ running$/gm)?.length, 6, 'status from another process sees 6 servers running');

  const json = join(dir, 'rows.json');
  const kv = await node('bench/main.ts', [
    'kv', '--targets', 'etcd,redis', '--baseline', 'etcd', '--size', '1KiB', '--concurrency', '4', '--batch', '1,10',
    '--seconds', '0.5', '--warmup', '0.1', '--runs', '1', '--keys', '50', '--versions', '3', '--peers-dir', dir, '--json', json, '--no-progress',
  ], 90_000);
  t.match(kv.stdout, /machine: \d+ cores/);
  t.match(kv.stdout, /load average before: /);
  t.match(kv.stdout, /peers: running, from /);
  for (const title of ['put 1 KiB', 'put 1 KiB, batches of 10', 'get 1 KiB', 'get-past 1 KiB', 'mixed 1 KiB']) t.match(kv.stdout, `== ${title} (`);
  t.match(kv.stdout, /etcd ×ops/);
  const rows = JSON.parse(readFileSync(json, 'utf8')) as BenchRow[];
  t.equal(rows.length, 5 * 2, 'one row per workload per target');
  for (const r of rows) {
    const label = `${r.target} ${r.op} batch ${r.batch}`;
    t.match(r, { size_bytes: 1024, concurrency: 4, durability: String }, label);
    if (r.target === 'redis' && r.op === 'get-past') {
      t.same([r.ops_per_s, r.p50_ms, r.p99_ms], [null, null, null], `${label}: n/a`);
      t.match(r.note, /n\/a/);
      continue;
    }
    t.equal(r.errors, 0, `${label}: no failed operations (${r.last_error ?? ''})`);
    t.ok(r.ops_per_s! > 0 && r.mb_per_s! > 0, `${label}: throughput measured`);
    t.ok(r.p50_ms! > 0 && r.p99_ms! >= r.p50_ms!, `${label}: latencies measured`);
  }
  t.match(rows.find((r) => r.target === 'etcd' && r.op === 'put')!.durability, /majority \(2\/3\)/);
  t.match(rows.find((r) => r.target === 'redis' && r.op === 'put')!.durability, /WAIT 2/);

  t.ok([...state.etcd!.members, state.redis!.primary, ...state.redis!.replicas].every(isOurs), 'the bench left the peers it found running');
  await node('scripts/peers/main.ts', ['stop', '--dir', dir], 60_000);
  t.ok([...state.etcd!.members, state.redis!.primary, ...state.redis!.replicas].every((p) => !isOurs(p)), 'stop from another process stopped every pid');
  t.notOk(existsSync(join(dir, 'state.json')));
});
