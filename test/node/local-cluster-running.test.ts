import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { LocalCluster } from '../../src/node/local-cluster.js';

/**
 * Starting a local cluster whose members' data directories are held by live processes (the same cluster
 * already running) fails at once, before any member starts: the running members would otherwise answer the
 * new ones' readiness probes, and the launcher said "ready" while its members exited.
 */
t.test('a cluster already running in the directory: refused before any member starts', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'squall-running-'));
  const holder = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.teardown(() => {
    holder.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const cluster = await LocalCluster.plan({ dataDir: dir, nodes: 3, shards: 1 });
  mkdirSync(cluster.dataDirOf(2), { recursive: true });
  writeFileSync(join(cluster.dataDirOf(2), 'LOCK'), String(holder.pid));
  await t.rejects(cluster.startAll(), { message: new RegExp(`already running \\(member 2 is process ${holder.pid}\\): stop it first`) });
  t.same(
    [...cluster.members.values()].map((m) => m.process),
    [null, null, null],
    'no member process was started',
  );
});
