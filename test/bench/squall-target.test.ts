import t from 'tap';
import { SquallTarget } from '../../bench/targets/squall.js';
import { FakeCluster } from '../fixtures/fake-cluster.js';
import { FakeSquall } from '../fixtures/fake-squall.js';

/** The bench's Squall target routes when pointed at a cluster, and still works against a single node. */
t.test('pointed at one member of a cluster, the target sends each key to a member of its shard', async (t) => {
  const cluster = await new FakeCluster({ nodes: 3, shards: 3, replicas: 1 }).start();
  const target = new SquallTarget({ url: cluster.node(0).url, pool: '/bench' });
  t.teardown(async () => {
    await target.close();
    await cluster.stop();
  });
  await target.open({ concurrency: 4 });
  t.match(target.durability, /1\/1 replica before/);
  const keys = Array.from({ length: 12 }, (_, i) => `k${i}`);
  const refs = [];
  for (const key of keys) refs.push(await target.put(key, Buffer.from(`v-${key}`)));
  await target.putMany(keys.slice(0, 6).map((key) => ({ key, value: Buffer.from(`w-${key}`) })));
  for (const key of keys.slice(0, 6)) t.equal(Buffer.from((await target.get(key))!).toString(), `w-${key}`);
  t.equal(Buffer.from((await target.getPast('k7', refs[7]!))!).toString(), 'v-k7');
  for (const [id, node] of cluster.nodes) {
    t.equal(node.forwarded, 0, `member ${id} forwarded nothing`);
    for (const r of node.requests.filter((r) => r.url.startsWith('/v1/objects/'))) {
      const key = decodeURIComponent(r.url.split('?')[0]!.slice('/v1/objects'.length));
      t.ok(cluster.holders(key).members.includes(id), `${r.method} ${key} went to member ${id}, which holds its shard`);
    }
  }
  const shardsWritten = new Set(keys.map((k) => cluster.holders(`/bench/${k}`).shard));
  t.equal(shardsWritten.size, 3, 'the keys spread over the three shards (so routing was exercised)');
});

t.test('against a single node, every request goes to it', async (t) => {
  const node = new FakeSquall();
  const url = await node.start();
  const target = new SquallTarget({ url });
  t.teardown(async () => {
    await target.close();
    await node.stop();
  });
  await target.open({ concurrency: 2 });
  const ref = await target.put('a', Buffer.from('1'));
  await target.put('a', Buffer.from('2'));
  t.equal(Buffer.from((await target.get('a'))!).toString(), '2');
  t.equal(Buffer.from((await target.getPast('a', ref))!).toString(), '1');
  t.equal(await target.get('missing'), null);
  t.equal(node.requestsTo('PUT', '/v1/objects/bench/a').length, 2);
});
