import { rmSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { eventually, startTestCluster } from '../fixtures/cluster.js';

/**
 * A member rebuilt from an empty data directory gets every shard by state transfer; when the shards stay
 * quiet afterwards and another member fails, the view change must still complete. (It used to wait forever
 * for the rebuilt member's persisted row, which only a write delivered after the transfer would have moved.)
 */
const KEYS = 40;

t.test('after a rebuild by state transfer and a quiet spell, the next failure is survived', async (t) => {
  const { cluster, clients, dir } = await startTestCluster(t, 3, 2, 3);
  const c1 = clients.get(1)!;
  await c1.createPool('/e', { type: 'persistent' });
  const written = new Map<string, number>();
  for (let i = 0; i < KEYS; i++) written.set(`/e/k${i}`, (await c1.put(`/e/k${i}`, `v${i}`)).version);

  const realView = (await c1.cluster()).view;
  await cluster.kill(3);
  rmSync(join(dir, 'node-3'), { recursive: true, force: true });
  // while the emptied member starts: it must not say it is ready, nor answer from its empty state, in a view
  // of its own (it used to form view 0 from the configuration and serve "no pools" for about two seconds)
  const url3 = cluster.members.get(3)!.url;
  const wrong: string[] = [];
  let polling = true;
  const poller = (async () => {
    for (let i = 0; polling && i < 1200; i++) {
      const ready = await fetch(url3 + '/readyz', { signal: AbortSignal.timeout(2000) }).catch(() => null);
      if (ready?.status === 200) {
        const view = (await (await fetch(url3 + '/v1/cluster')).json()) as { view: number };
        if (view.view < realView) wrong.push(`ready in view ${view.view} (the group is at ${realView} or later)`);
      }
      const pools = await fetch(url3 + '/v1/pools', { signal: AbortSignal.timeout(2000) }).catch(() => null);
      if (pools?.status === 200) {
        const list = (await pools.json()) as { pools: unknown[] };
        if (list.pools.length === 0) wrong.push('answered an empty pool list');
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  await cluster.start(3);
  await cluster.waitReady(60_000, [3]);
  // every shard of member 3 (the data shards and the pool metadata shard) came by state transfer: wait until
  // it serves them, then leave them quiet, so nothing is delivered after the transfers
  const c3 = clients.get(3)!;
  await eventually(() => c3.get('/e/k0', { version: written.get('/e/k0')! }), 30_000);
  await new Promise((r) => setTimeout(r, 1500));
  polling = false;
  await poller;
  t.same(wrong, [], 'the emptied member served nothing before it joined the group');

  await cluster.kill(2);
  const after = await eventually(() => c1.put('/e/after', 'still writable'), 45_000, 250);
  t.ok(after.version > 0, 'a write after member 2 failed is acknowledged');
  const info = await c1.cluster();
  const shards = info.subgroups.find((g) => g.type === 'persistent')!.shards;
  t.ok(shards.every((s) => !s.members.includes(2)), 'member 2 is out of every shard');
  for (const [key, version] of written) t.equal((await eventually(() => c3.get(key, { version }))).version, version, `${key} on the rebuilt member`);
});
