import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { SquallClient } from '../../src/client/index.js';
import { runCli } from '../fixtures/run-cli.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** Bounds on the node's start and stop, so a hung node fails the test instead of hanging it. */
const START_MS_MAX = 60_000;
const STOP_MS_MAX = 30_000;

t.test('squall start serves on the port it prints, and stops cleanly on SIGTERM and on SIGINT', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'squall-cli-start-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const env: NodeJS.ProcessEnv = { ...process.env, SQUALL_LOG_LEVEL: 'warn' };
    delete env.NODE_OPTIONS;
    delete env.NODE_V8_COVERAGE;
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'start', '--port', '0', '--data', join(dir, 'data'), '--json'], {
      cwd: repoRoot,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL within ${START_MS_MAX} ms; stderr: ${stderr}`)), START_MS_MAX);
      createInterface({ input: child.stdout }).once('line', (l) => {
        clearTimeout(timer);
        resolve(l);
      });
      void exited.then((code) => reject(new Error(`exited with ${code} before serving; stderr: ${stderr}`)));
    });
    const { url } = JSON.parse(line) as { url: string };
    t.match(url, /^http:\/\/127\.0\.0\.1:\d+$/, `${signal}: the URL is printed as JSON`);
    const client = new SquallClient(url);
    t.equal(await client.health(), true);
    await client.createPool('/s', { type: 'persistent' });
    const w = await client.put('/s/k', signal);
    t.equal((await client.get('/s/k', { version: w.version })).value.toString(), signal, 'it serves, and keeps what it stored');
    await client.close();
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_MS_MAX);
    const code = await exited;
    clearTimeout(timer);
    t.equal(code, 0, `${signal}: exit 0 after a clean stop; stderr: ${stderr}`);
  }
});

t.test('--id without a cluster file is a usage error, not a single node that ignores it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'squall-start-id-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const noConfig = await runCli(['start', '--id', '3', '--port', '0', '--data', join(dir, 'a')]);
  t.equal(noConfig.code, 2, 'exit 2');
  t.match(noConfig.stderr, /--id names a member of a cluster: give its cluster file with --config/);
  const nodeFile = join(dir, 'node.json');
  writeFileSync(nodeFile, JSON.stringify({ port: 0 }));
  const notCluster = await runCli(['start', '--config', nodeFile, '--id', '3', '--data', join(dir, 'b')]);
  t.equal(notCluster.code, 1);
  t.match(notCluster.stderr, /an id \(3\) names a member of a cluster, but .*node\.json is not a cluster file/);
  t.notOk(existsSync(join(dir, 'a')) || existsSync(join(dir, 'b')), 'no data directory made');
});

t.test('a --host that is not an address of this machine: a clear error', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'squall-start-host-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // 192.0.2.0/24 is TEST-NET-1: never an address of this machine
  const r = await runCli(['start', '--host', '192.0.2.7', '--port', '0', '--data', join(dir, 'd')]);
  t.equal(r.code, 1);
  t.match(r.stderr, /cannot listen on host '192\.0\.2\.7' \(EADDRNOTAVAIL\): give --host an address of this machine/);
});
