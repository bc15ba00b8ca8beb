import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { SquallClient } from '../../src/client/index.js';
import { runCliAll } from '../fixtures/run-cli.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** Bounds on the cluster's start and stop, so a hung launcher or member fails the test instead of hanging it. */
const START_MS_MAX = 120_000;
const STOP_MS_MAX = 60_000;

interface RunningCluster {
  launcher: ChildProcess;
  /** The launcher's JSON line (--json), once it printed it. */
  ready: Promise<{ cluster: string; members: { id: number; url: string; pid: number }[] }>;
  stdoutLines: string[];
  stderr: () => string;
  /** Resolves with the launcher's exit code once it and every process holding its output (the members) are gone. */
  closed: Promise<number | null>;
  /** The launcher and its members, as far as known (SIGKILLed by bounded() and at the end of the test). */
  pids: Set<number>;
}

/**
 * `squall cluster ARGS --json` as a terminal runs it: the leader of its own process group (so the test can
 * signal the group as Ctrl-C does). Everything it started is SIGKILLed at the end of the test.
 */
function launchCluster(t: Test, args: string[]): RunningCluster {
  const env: NodeJS.ProcessEnv = { ...process.env, SQUALL_LOG_LEVEL: 'warn' };
  delete env.NODE_OPTIONS;
  delete env.NODE_V8_COVERAGE;
  delete env.SQUALL_URL;
  const launcher = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'cluster', '--json', ...args], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const pids = new Set([launcher.pid!]);
  t.teardown(() => killAll(pids));
  let stderr = '';
  launcher.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const stdoutLines: string[] = [];
  const closed = new Promise<number | null>((resolve) => launcher.once('close', (code) => resolve(code)));
  const ready = new Promise<Awaited<RunningCluster['ready']>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready within ${START_MS_MAX} ms; stderr: ${stderr}`)), START_MS_MAX);
    createInterface({ input: launcher.stdout! }).on('line', (line) => {
      stdoutLines.push(line);
      if (!line.startsWith('{"cluster"')) return;
      clearTimeout(timer);
      const r = JSON.parse(line) as Awaited<RunningCluster['ready']>;
      for (const m of r.members) pids.add(m.pid);
      resolve(r);
    });
    void closed.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before ready; stderr: ${stderr}`));
    });
  });
  ready.catch(() => undefined); // a test that does not wait for it
  return { launcher, ready, stdoutLines, stderr: () => stderr, closed, pids };
}

function killAll(pids: Iterable<number>): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/** Resolves with the exit code once `closed` does, SIGKILLing everything after STOP_MS_MAX. */
async function bounded(c: RunningCluster): Promise<number | null> {
  const timer = setTimeout(() => killAll(c.pids), STOP_MS_MAX);
  const code = await c.closed;
  clearTimeout(timer);
  return code;
}

/** Whether process `pid` still runs (an exited one its parent has not reaped yet, a zombie, does not). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

t.test('Ctrl-C (SIGINT to the process group) while writes are in flight stops every member cleanly', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'squall-cli-cluster-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const c = launchCluster(t, ['--nodes', '3', '--port', '0', '--data', dir]);
  const ready = await c.ready;
  t.equal(ready.members.length, 3);
  const client = new SquallClient({ url: ready.members[0]!.url, retryAttemptsMax: 1 });
  t.teardown(() => client.close());
  await client.createPool('/w', { type: 'persistent' });
  // writers that go on until the cluster stops answering
  let acked = 0;
  const writers = Array.from({ length: 8 }, async (_, w) => {
    for (let i = 0; ; i++) {
      try {
        await client.put(`/w/k${w}`, `v${i}`);
        acked++;
      } catch {
        return;
      }
    }
  });
  while (acked < 20) await new Promise((r) => setTimeout(r, 20));
  process.kill(-c.launcher.pid!, 'SIGINT');
  const code = await bounded(c);
  await Promise.all(writers);
  const stderr = c.stderr();
  t.equal(code, 0, `the launcher exits 0: every member stopped cleanly; stderr:\n${stderr}`);
  t.equal(stderr.match(/^stopped at /gm)?.length ?? 0, 3, 'every member logs a clean stop');
  t.notMatch(stderr, /again|without a clean stop|not stopped cleanly/);
  for (const m of ready.members) t.notOk(alive(m.pid), `member ${m.id} is gone`);
});

t.test('--json: stdout carries only JSON (members write to stderr); a launcher killed by SIGKILL takes its members with it; started again with no flags, the same members come back', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'squall-cli-cluster-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const first = launchCluster(t, ['--nodes', '2', '--shards', '1', '--port', '0', '--data', dir]);
  const firstReady = await first.ready;
  t.equal(firstReady.members.length, 2);
  process.kill(first.launcher.pid!, 'SIGKILL');
  await bounded(first); // 'close': the members, which hold the launcher's stdout and stderr, are gone too
  for (const m of firstReady.members) t.notOk(alive(m.pid), `member ${m.id} is gone with its launcher`);
  t.equal(first.stderr().match(/^launcher gone: stopping$/gm)?.length ?? 0, 2, `each member stops cleanly; stderr:\n${first.stderr()}`);
  t.ok(first.stdoutLines.length > 0);
  for (const line of first.stdoutLines) t.doesNotThrow(() => JSON.parse(line), `a JSON line: ${line}`);
  t.match(first.stderr(), /squall listening on http:\/\/127\.0\.0\.1:\d+/, "the members' own lines are on stderr");

  // no flags: the defaults (3 nodes, port 8080) are not asked for, so the cluster file decides
  const again = launchCluster(t, ['--data', dir]);
  t.same(
    (await again.ready).members.map((m) => m.url),
    firstReady.members.map((m) => m.url),
    'the same members at the same addresses',
  );
  process.kill(again.launcher.pid!, 'SIGTERM');
  t.equal(await bounded(again), 0, again.stderr());
  for (const line of again.stdoutLines) t.doesNotThrow(() => JSON.parse(line), `a JSON line: ${line}`);
});

t.test('a launcher killed by SIGKILL while its members start takes them with it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'squall-cli-cluster-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const c = launchCluster(t, ['--nodes', '2', '--shards', '1', '--port', '0', '--data', dir]);
  // the members' pids as soon as they are spawned (long before they serve: loading takes them seconds)
  const members = new Set<number>();
  const deadline = Date.now() + START_MS_MAX;
  while (members.size < 2 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
    let children: string[] = [];
    try {
      children = readFileSync(`/proc/${c.launcher.pid}/task/${c.launcher.pid}/children`, 'utf8').trim().split(/\s+/);
    } catch {
      // not there yet
    }
    for (const pid of children.filter(Boolean).map(Number)) {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('\0start\0--config\0')) members.add(pid);
    }
  }
  for (const pid of members) c.pids.add(pid);
  t.equal(members.size, 2, 'both members spawned');
  process.kill(c.launcher.pid!, 'SIGKILL');
  await bounded(c);
  for (const pid of members) t.notOk(alive(pid), `member ${pid} is gone with its launcher`);
  t.equal(c.stderr().match(/^launcher gone: stopping$/gm)?.length ?? 0, 2, `each member stops once it has started; stderr:\n${c.stderr()}`);
});

t.test('a layout that cannot be is a usage error and leaves no cluster file; flags that disagree with an existing cluster file are refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'squall-cli-cluster-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const [bad] = await runCliAll([[['cluster', '--nodes', '3', '--replicas', '5', '--data', dir, '--port', '19080']]]);
  t.equal(bad.code, 2, `exit 2; stderr: ${bad.stderr}`);
  t.match(bad.stderr, /^error: .*replicas 5 .* 3 nodes/m);
  t.equal(bad.out, '');
  t.notOk(existsSync(join(dir, 'cluster.json')), 'no cluster file is left behind');

  // an existing cluster: 2 nodes, 1 shard, HTTP ports from 19080
  const existing = { name: 'x', members: [1, 2].map((id) => ({ id, host: '127.0.0.1', port: 19_180 + id, httpPort: 19_079 + id })), layout: { persistent: [{ shards: 1, replicas: 2 }], volatile: [{ shards: 1, replicas: 2 }] }, pools: [], group: { majorityRule: false } };
  writeFileSync(join(dir, 'cluster.json'), JSON.stringify(existing));
  const results = await runCliAll([
    [['cluster', '--nodes', '3', '--data', dir, '--port', '0']],
    [['cluster', '--shards', '4', '--replicas', '1', '--port', '9000', '--data', dir]],
  ]);
  const [nodes, several] = results;
  t.equal(nodes.code, 2, nodes.stderr);
  t.match(nodes.stderr, new RegExp(`^error: ${join(dir, 'cluster.json').replaceAll('.', '\\.')} .*--nodes 3 \\(the file has 2\\)`, 'm'));
  t.notMatch(nodes.stderr, /--port/, '--port 0 (any free ports) agrees with any ports');
  t.equal(several.code, 2, several.stderr);
  t.match(several.stderr, /--shards 4 \(the file has 1\), --replicas 1 \(the file has 2\), --port 9000 \(the file has 19080\)/);
  t.same(JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')), existing, 'the file is left as it was');
});
