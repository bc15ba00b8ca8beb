import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runScript as node } from './run-script.js';

/** Pids of processes whose command line mentions dir (the Squall members the bench started there). */
function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

t.test('bench scale over Squall: history in batches of one key, put throughput on fresh clusters of 1 and 2 members', async (t) => {
  const dir = t.testdir();
  // the clusters the bench starts live under TMPDIR: here, so the test can see that none is left running
  t.teardown(() => {
    for (const pid of processesUnder(dir)) process.kill(pid, 'SIGKILL');
  });
  const out = join(dir, 'scale');
  const scale = await node('bench/main.ts', [
    'scale', '--targets', 'squall', '--curves', 'replicas,history', '--cluster', '1', '--versions', '5,30', '--preload-batch', '10', '--value-size', '64',
    '--replicas', '1,2', '--replicas-batch', '1,10', '--replicas-concurrency', '4', '--keys', '50',
    '--seconds', '0.3', '--warmup', '0.1', '--runs', '1', '--out', out, '--no-progress',
  ], 100_000, { TMPDIR: dir });
  t.match(scale.stdout, /wrote /);
  t.match(scale.stderr, /started a local cluster of 2 member\(s\), 2 shards × 2 replicas/);
  const csv = readFileSync(`${out}.csv`, 'utf8').trim().split('\n').map((l) => l.split(','));
  t.same(csv[0], ['curve', 'target', 'x', 'batch', 'p50_ms', 'p99_ms', 'ops_per_s', 'runs', 'errors', 'load_1m', 'durability', 'note']);
  const rows = csv.slice(1);
  t.same(rows.map((r) => r.slice(0, 4).join(' ')), [
    'history squall 5 1', 'history squall 30 1',
    'replicas squall 1 1', 'replicas squall-delivered 1 1', 'replicas squall 1 10', 'replicas squall-delivered 1 10',
    'replicas squall 2 1', 'replicas squall-delivered 2 1', 'replicas squall 2 10', 'replicas squall-delivered 2 10',
  ]);
  t.ok(rows.every((r) => r[8] === '0' && Number(r[6]) > 0), 'every point measured without errors (past reads checked for the newest version at the ref)');
  t.match(rows.find((r) => r[0] === 'replicas' && r[1] === 'squall-delivered' && r[2] === '2')![10], /delivered: received by 2\/2 replicas/);
  t.match(rows.find((r) => r[0] === 'replicas' && r[1] === 'squall' && r[2] === '2')![10], /persisted: fsync on 2\/2 replicas/);
  t.match(scale.stdout, /preloads:\n(.*\n){2}history +squall +5 .*batches of 10 versions, one at a time/);
  for (const curve of ['history', 'replicas']) t.ok(existsSync(`${out}-${curve}.png`), `${curve} chart`);
  t.same(processesUnder(dir), [], 'every member the bench started is stopped');
  t.same(readdirSync(dir).filter((f) => f.startsWith('squall-bench-')), [], 'and its data removed');
});
