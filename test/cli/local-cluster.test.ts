import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { LocalCluster } from '../../src/node/local-cluster.js';
import { MALLOC_TUNABLES } from '../../src/node/malloc-tuning.js';

/** A one-member local cluster whose member runs `script` instead of squall (with `env`); removed at the end. */
async function scriptCluster(t: Test, script: string, env?: NodeJS.ProcessEnv): Promise<LocalCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'squall-lc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cluster = await LocalCluster.plan({
    nodes: 1,
    shards: 1,
    replicas: 1,
    dataDir: dir,
    stdio: 'file',
    ...(env !== undefined ? { env } : {}),
    nodeArgs: ['-e', script],
  });
  t.teardown(() => cluster.killAll());
  return cluster;
}

t.test('a member that exits during start is reported with the end of its log', async (t) => {
  // the member writes a line and exits 1
  const cluster = await scriptCluster(t, 'console.error("cannot start: the reason is here"); process.exit(1)');
  await t.rejects(cluster.start(1, 20_000), /member 1 exited during start \(code 1, signal null\); the end of its log \(.*node-1\.log\):\ncannot start: the reason is here/);
});

t.test('members start with the malloc tunables, unless the environment sets its own or turns them off', async (t) => {
  const envOf = async (env: NodeJS.ProcessEnv): Promise<string> => {
    // the member prints the GLIBC_TUNABLES it got and exits: the start error carries that line
    const cluster = await scriptCluster(t, 'console.error("tunables=" + (process.env.GLIBC_TUNABLES ?? "unset")); process.exit(1)', env);
    const e = await cluster.start(1, 20_000).then(
      () => null,
      (err: unknown) => err as Error,
    );
    return /tunables=(\S+)/.exec(e?.message ?? '')?.[1] ?? 'no line';
  };
  t.equal(await envOf({ SQUALL_MALLOC_TUNING: undefined, GLIBC_TUNABLES: undefined }), MALLOC_TUNABLES);
  t.equal(await envOf({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }), 'glibc.malloc.arena_max=2', "the operator's setting wins");
  t.equal(await envOf({ SQUALL_MALLOC_TUNING: '0', GLIBC_TUNABLES: undefined }), 'unset', 'SQUALL_MALLOC_TUNING=0 turns it off');
});
