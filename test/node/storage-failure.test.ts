import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { isSquallError, type SquallError } from '../../src/api/errors.js';
import { SquallClient } from '../../src/client/index.js';
import { spawnNode } from '../fixtures/node-process.js';

/**
 * A node whose disk fills up (a file-size limit on its process): the failed commit fails the writes waiting for
 * it with a clear error, the process stays up and says why it is not ready, and every write acknowledged before
 * is there after a restart with room again.
 */
const MAIN = fileURLToPath(new URL('../fixtures/node-main.ts', import.meta.url));
const PRELOAD = fileURLToPath(new URL('../fixtures/ignore-sigxfsz.mjs', import.meta.url));
/** The process's file-size limit, in KiB (ulimit -f): room for about a hundred 64 KiB values. */
const FILE_KIB_MAX = 8192;
const VALUE = Buffer.alloc(64 * 1024, 7);
const PUTS_MAX = 400;

t.test('a full disk: writes fail with the cause, the node stays up and not ready, acknowledged writes survive', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'squall-full-'));
  const child = spawn('bash', ['-c', `ulimit -f ${FILE_KIB_MAX}; exec "$0" --import "$1" --import tsx "$2" "$3"`, process.execPath, PRELOAD, MAIN, dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SQUALL_LOG_LEVEL: 'error' },
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  });
  const first = await Promise.race([
    new Promise<string>((r) => createInterface({ input: child.stdout! }).once('line', r)),
    new Promise<string>((_, reject) => setTimeout(() => reject(new Error(`no start within 30 s: ${stderr}`)), 30_000)),
  ]);
  const { url } = JSON.parse(first) as { url: string };
  const client = new SquallClient({ url, retryAttemptsMax: 1 });
  t.teardown(() => client.close());
  await client.createPool('/f', { type: 'persistent' });

  const acknowledged: string[] = [];
  let failure: SquallError | null = null;
  for (let i = 0; i < PUTS_MAX && failure === null; i++) {
    try {
      await client.put(`/f/k${i}`, VALUE);
      acknowledged.push(`/f/k${i}`);
    } catch (e) {
      if (!isSquallError(e)) throw e;
      failure = e as SquallError;
    }
  }
  t.ok(failure, `a put failed within ${PUTS_MAX} puts of 64 KiB under a ${FILE_KIB_MAX} KiB file limit`);
  t.match(failure, { code: 'unavailable', message: /storage write failed/ }, 'the error says the storage failed');
  t.ok(acknowledged.length > 0, 'some puts were acknowledged before');
  t.equal(child.exitCode, null, 'the process is still running');
  t.match(await client.put('/f/later', 'x').catch((e: unknown) => e), { code: 'unavailable', message: /storage write failed/ }, 'later writes fail the same way');
  const ready = await fetch(url + '/readyz');
  t.equal(ready.status, 503);
  t.match(await ready.json(), { error: { message: /not ready: shard .* failed: storage write failed/ } }, 'readyz says which shard and why');
  t.match(stderr, /storage failed/, 'the log says the storage failed');
  t.notMatch(stderr, /Commit failed \(see commitError/, 'no unhandled rejection from lmdb-js');

  child.kill('SIGKILL');
  await exited;
  const again = await spawnNode(dir);
  t.teardown(() => again.kill());
  const reader = new SquallClient({ url: again.url });
  t.teardown(() => reader.close());
  let intact = 0;
  for (const key of acknowledged) if ((await reader.get(key)).value.equals(VALUE)) intact++;
  t.equal(intact, acknowledged.length, `all ${acknowledged.length} acknowledged writes are there after a restart with room`);
});
