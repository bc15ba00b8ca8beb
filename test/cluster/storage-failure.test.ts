import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { isSquallError } from '../../src/api/errors.js';
import { eventually, startTestCluster } from '../fixtures/cluster.js';

/**
 * A member whose disk fills up (a file-size limit set on its running process with prlimit) stops as a crash:
 * it says why on /readyz, the others install a view without it and go on serving, and every write they
 * acknowledged is readable from both of them.
 */
const PRELOAD = fileURLToPath(new URL('../fixtures/ignore-sigxfsz.mjs', import.meta.url));
const VALUE = Buffer.alloc(64 * 1024, 9);
/** Room left to the failing member's data file: a few dozen 64 KiB values. */
const ROOM_BYTES = 2 * 1024 * 1024;
const PUTS_MAX = 600;
const SECONDS_MAX = 90;

t.test('a member whose storage fails leaves; the other two go on', async (t) => {
  const { cluster, clients, dir } = await startTestCluster(t, 3, 1, 3, { nodeArgs: ['--import', PRELOAD] });
  const c1 = clients.get(1)!;
  await c1.createPool('/full', { type: 'persistent' });
  const victim = cluster.members.get(3)!;
  const dataFile = join(dir, 'node-3', 'lmdb', 'data.mdb');
  const limit = statSync(dataFile).size + ROOM_BYTES;
  execFileSync('prlimit', ['--pid', String(victim.process!.pid), `--fsize=${limit}`]);

  const acknowledged = new Map<string, number>();
  const errors = new Map<string, number>();
  const deadline = Date.now() + SECONDS_MAX * 1000;
  let left = false;
  for (let i = 0; i < PUTS_MAX && Date.now() < deadline && !left; i++) {
    try {
      acknowledged.set(`/full/k${i}`, (await c1.put(`/full/k${i}`, VALUE)).version);
    } catch (e) {
      if (!isSquallError(e)) throw e;
      errors.set(e.code, (errors.get(e.code) ?? 0) + 1);
    }
    if (i % 10 === 9) {
      const info = await c1.cluster().catch(() => null);
      const shard = info?.subgroups.find((g) => g.type === 'persistent')?.shards[0];
      left = shard !== undefined && shard.members.length === 2 && !shard.members.includes(3);
    }
  }
  t.ok(left, `the others installed a view without member 3 (acknowledged ${acknowledged.size} puts; errors ${JSON.stringify([...errors])})`);
  const ready = await fetch(victim.url + '/readyz');
  t.equal(ready.status, 503, 'the failed member is not ready');
  t.match(await ready.json(), { error: { message: /stopped after a fatal error: storage write failed/ } }, 'and says why');
  t.match(readFileSync(join(dir, 'node-3.log'), 'utf8'), /storage failed: this member stops/, 'its log says what happened');

  const after = await eventually(() => c1.put('/full/after', 'still here'));
  acknowledged.set('/full/after', after.version);
  t.ok(acknowledged.size > 1, 'writes acknowledged');
  for (const id of [1, 2]) {
    const c = clients.get(id)!;
    let same = 0;
    for (const [key, version] of acknowledged) {
      const got = await eventually(() => c.get(key, { version }));
      if (got.version === version) same++;
    }
    t.equal(same, acknowledged.size, `member ${id} has every acknowledged write`);
  }
});
