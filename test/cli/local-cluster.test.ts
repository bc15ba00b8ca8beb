import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { LocalCluster } from '../../src/node/local-cluster.js';

t.test('a member that exits during start is reported with the end of its log', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'squall-lc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // the member process runs this script instead of squall: it writes a line and exits 1
  const cluster = await LocalCluster.plan({
    nodes: 1,
    shards: 1,
    replicas: 1,
    dataDir: dir,
    stdio: 'file',
    nodeArgs: ['-e', 'console.error("cannot start: the reason is here"); process.exit(1)'],
  });
  t.teardown(() => cluster.killAll());
  await t.rejects(cluster.start(1, 20_000), /member 1 exited during start \(code 1, signal null\); the end of its log \(.*node-1\.log\):\ncannot start: the reason is here/);
});
