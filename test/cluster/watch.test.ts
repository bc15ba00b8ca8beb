import t from 'tap';
import type { WatchChange } from '../../src/client/index.js';
import { eventually, startTestCluster } from '../fixtures/cluster.js';

/**
 * Watch across the cluster: a member that does not order every shard follows the changes of all shards
 * of a prefix (per shard in version order), and a watch resumed after an event id continues exactly.
 */
t.test('watch through a member that lacks some shards sees every shard, in order, and resumes exactly', async (t) => {
  const { clients } = await startTestCluster(t, 5, 3, 3);
  const ids = [...clients.keys()];
  const info = await eventually(() => clients.get(ids[0]!)!.cluster());
  const persistent = info.subgroups.find((s) => s.type === 'persistent')!;
  // the member holding the fewest persistent shards watches
  const holdings = ids.map((id) => ({ id, n: persistent.shards.filter((s) => s.members.includes(id)).length }));
  const watcherId = holdings.sort((a, b) => a.n - b.n)[0]!.id;
  t.ok(holdings[0]!.n < persistent.shards.length, `member ${watcherId} orders ${holdings[0]!.n} of ${persistent.shards.length} shards`);
  const watcher = clients.get(watcherId)!;
  const writer = clients.get(ids.find((id) => id !== watcherId)!)!;
  await eventually(() => writer.createPool('/w', { type: 'persistent' }));
  await eventually(() => watcher.getPool('/w'));
  const writes = [];
  for (let i = 0; i < 30; i++) writes.push(await writer.put(`/w/k${i}`, `v${i}`));
  const seen: WatchChange[] = [];
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 30_000);
  for await (const e of watcher.watch('/w/', { fromVersion: 0, signal: ac.signal })) {
    seen.push(e);
    if (seen.length === 30) ac.abort();
  }
  clearTimeout(timer);
  t.equal(seen.length, 30, 'every change of every shard');
  t.same(new Set(seen.map((e) => e.key)), new Set(writes.map((w) => w.key)), 'the right keys');
  const byShard = new Map<string, number[]>();
  for (const e of seen) {
    const shard = e.id.slice(0, e.id.lastIndexOf(':'));
    byShard.set(shard, [...(byShard.get(shard) ?? []), e.version]);
  }
  t.ok(byShard.size >= 2, `changes came from ${byShard.size} shards`);
  for (const [shard, versions] of byShard) t.same(versions, [...versions].sort((a, b) => a - b), `${shard}: version order`);
  // resume after the 10th change: exactly the 20 after it, then new ones
  const more = [];
  for (let i = 30; i < 35; i++) more.push(await writer.put(`/w/k${i}`, `v${i}`));
  const resumed: string[] = [];
  const ac2 = new AbortController();
  const timer2 = setTimeout(() => ac2.abort(), 30_000);
  for await (const e of watcher.watch('/w/', { lastEventId: seen[9]!.id, signal: ac2.signal })) {
    resumed.push(e.id);
    if (resumed.length === 25) ac2.abort();
  }
  clearTimeout(timer2);
  t.same(resumed.slice(0, 20), seen.slice(10).map((e) => e.id), 'resumed right after the given change');
  t.same(new Set(resumed.slice(20).map((id) => id)).size, 5, 'and then the 5 later changes');
});
