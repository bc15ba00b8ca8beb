import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { LocalCluster, LocalClusterMismatchError, LocalClusterOptionsError } from '../../src/node/local-cluster.js';
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

t.test('options that make no cluster are refused before a cluster file is written', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'squall-lc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await t.rejects(LocalCluster.plan({ dataDir: dir, nodes: 3, shards: 2, replicas: 5 }), new LocalClusterOptionsError('replicas 5 is more than the 3 nodes (each replica of a shard is on another node)'));
  await t.rejects(LocalCluster.plan({ dataDir: dir, nodes: 3, shards: 300 }), LocalClusterOptionsError, 'the cluster file schema decides the rest');
  await t.rejects(LocalCluster.plan({ dataDir: dir, nodes: 3, shards: 2, httpPort: 65_534 }), /go past 65535/);
  t.same(readdirSync(dir), [], 'no cluster file, no temporary file');
  // once valid, the file is there whole, and nothing else
  const cluster = await LocalCluster.plan({ dataDir: dir, nodes: 3, shards: 2 });
  t.same(readdirSync(dir), ['cluster.json']);
  t.same(JSON.parse(readFileSync(cluster.configFile, 'utf8')).members, cluster.config.members);
});

t.test('an existing cluster file is reused when the options given agree with it, and refused, left as it is, when they do not', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'squall-lc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const first = await LocalCluster.plan({ dataDir: dir, nodes: 2, shards: 1 });
  const file = first.configFile;
  const text = readFileSync(file, 'utf8');
  const httpPort = first.config.members[0]!.httpPort;
  const same = [
    // not given: the file wins over them (a plain `squall cluster` restarts what is there)
    { nodes: 3, shards: 2, httpPort: 8080 },
    // given and equal; port 0 (any free ports) agrees with any
    { nodes: 2, shards: 1, replicas: 2, httpPort, given: ['nodes', 'shards', 'replicas', 'httpPort', 'transport'] as const },
    { nodes: 2, shards: 1, httpPort: 0, given: ['nodes', 'httpPort'] as const },
  ];
  for (const o of same) {
    const again = await LocalCluster.plan({ dataDir: dir, ...o });
    t.same(again.config.members, first.config.members, `the same members: ${JSON.stringify(o)}`);
    t.equal(again.config.name, first.config.name);
  }
  const e = await LocalCluster.plan({
    dataDir: dir,
    nodes: 3,
    shards: 1,
    replicas: 1,
    httpPort: httpPort + 1,
    transport: { kind: 'fabric', provider: 'shm' },
    given: ['nodes', 'shards', 'replicas', 'httpPort', 'transport'],
  }).then(
    () => null,
    (err: unknown) => err,
  );
  t.type(e, LocalClusterMismatchError);
  t.equal((e as LocalClusterMismatchError).file, file);
  t.same((e as LocalClusterMismatchError).differences, [
    { option: 'nodes', inFile: '2', asked: '3' },
    { option: 'replicas', inFile: '2', asked: '1' },
    { option: 'httpPort', inFile: String(httpPort), asked: String(httpPort + 1) },
    { option: 'transport', inFile: 'tcp', asked: 'fabric (shm)' },
  ]);
  t.match((e as Error).message, `${file} disagrees with the options given: nodes 3 (the file has 2)`);
  t.equal(readFileSync(file, 'utf8'), text, 'the file is left as it was');
  t.ok(existsSync(file));
});
