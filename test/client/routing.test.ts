/**
 * Cluster-aware routing of the client against a fake cluster (test/fixtures/fake-cluster.ts): key-bound
 * requests go straight to members of the key's shard, reads spread, writes of a shard come from one member,
 * failures are retried elsewhere with the same request id, layout changes are picked up.
 */
import t from 'tap';
import { SquallClient } from '../../src/client/index.js';
import { clusterAndClient, keyOfUrl } from '../fixtures/cluster-client.js';

const ID = 'squall-request-id';
const VIEW_CHANGE = JSON.stringify({ error: { code: 'view_change', message: 'view change in progress' } });

t.test('every request for a key reaches a member of its shard; one member takes all writes of a shard', async (t) => {
  const { cluster, client } = await clusterAndClient(t, { nodes: 3, shards: 3, replicas: 2 });
  const keys = Array.from({ length: 60 }, (_, i) => `/p/k${i}`);
  for (const key of keys) {
    const w = await client.put(key, `v-${key}`);
    t.equal(w.shard, cluster.holders(key).shard);
  }
  for (const key of keys) t.equal((await client.get(key)).value.toString(), `v-${key}`);
  for (const key of keys.slice(0, 10)) {
    await client.head(key);
    await client.history(key);
    await client.delete(key);
  }

  let puts = 0;
  const writersByShard = new Map<number, Set<number>>();
  for (const [id, node] of cluster.nodes) {
    for (const r of node.requests.filter((r) => r.url.startsWith('/v1/objects/'))) {
      const { shard, members } = cluster.holders(keyOfUrl(r.url));
      t.ok(members.includes(id), `${r.method} ${r.url} went to member ${id} of shard ${shard} (${members.join(',')})`);
      if (r.method === 'PUT' || r.method === 'DELETE') {
        if (!writersByShard.has(shard)) writersByShard.set(shard, new Set());
        writersByShard.get(shard)!.add(id);
      }
      if (r.method === 'PUT') puts++;
    }
    t.equal(node.forwarded, 0, `member ${id} forwarded nothing`);
  }
  t.equal(puts, keys.length, 'one PUT per put: nothing was retried');
  t.equal(writersByShard.size, 3, 'the keys spread over the three shards');
  for (const [shard, writers] of writersByShard) t.equal(writers.size, 1, `writes of shard ${shard} all came through one member`);
  t.equal(client.routedView, 1);
});

t.test('reads of a key spread round robin over the members of its shard', async (t) => {
  const { cluster, client } = await clusterAndClient(t, { nodes: 4, shards: 2, replicas: 3 });
  await client.put('/p/hot', 'x');
  for (let i = 0; i < 30; i++) await client.get('/p/hot');
  const { members } = cluster.holders('/p/hot');
  const gets = cluster.countsTo('GET', '/v1/objects/p/hot');
  for (const [id, n] of gets) t.equal(n, members.includes(id) ? 10 : 0, `member ${id}: ${n} of 30 reads`);
});

t.test('requests that are not key-bound go to a live member, the seed first', async (t) => {
  const { cluster, client } = await clusterAndClient(t, { nodes: 3, shards: 3, replicas: 2 });
  await client.put('/p/a', '1');
  await client.listPools();
  await client.list('/p');
  t.equal(cluster.node(0).requestsTo('GET', '/v1/pools').length, 2, 'pools and keys listings to the seed');
  await cluster.kill(0);
  t.equal((await client.listPools()).length, 1, 'with the seed gone another member answers');
  t.same((await client.list('/p')).keys.map((k) => k.key), ['/p/a']);
  t.equal(cluster.node(1).requestsTo('GET', '/v1/pools').length + cluster.node(2).requestsTo('GET', '/v1/pools').length, 2);
});

t.test('a write whose answer is lost is retried on another member of the shard with the same id, applied once', async (t) => {
  const { cluster, client } = await clusterAndClient(t, { nodes: 3, shards: 3, replicas: 2 });
  const key = '/p/lost';
  const first = await client.put(key, 'one');
  const { members } = cluster.holders(key);
  const writer = members.find((id) => cluster.node(id).requestsTo('PUT', '/v1/objects/p/lost').length === 1)!;
  const other = members.find((id) => id !== writer)!;
  // The writer applies the put, then its connection drops before the answer.
  cluster.node(writer).fault({ kind: 'reset-after', method: 'PUT', match: /^\/v1\/objects\/p\/lost/ });
  const second = await client.put(key, 'two');
  const atWriter = cluster.node(writer).requestsTo('PUT', '/v1/objects/p/lost');
  const atOther = cluster.node(other).requestsTo('PUT', '/v1/objects/p/lost');
  t.equal(atWriter.length, 2);
  t.equal(atOther.length, 1, 'the retry went to the other member');
  t.equal(atOther[0]!.headers[ID], atWriter[1]!.headers[ID], 'with the same request id');
  t.same(cluster.data.objects.get(key)!.map((v) => v.version), [first.version, second.version], 'applied once');
  t.equal((await client.get(key)).value.toString(), 'two');
});

t.test('a killed member is passed over: its writes are retried on another member with the same id, applied once', async (t) => {
  const { cluster, client } = await clusterAndClient(t, { nodes: 3, shards: 3, replicas: 2 });
  // One key per shard, so whichever member is killed writes some of them.
  const keys: string[] = [];
  for (let i = 0; keys.length < 3; i++) {
    const key = `/p/k${i}`;
    if (!keys.some((k) => cluster.holders(k).shard === cluster.holders(key).shard)) keys.push(key);
  }
  for (const key of keys) await client.put(key, 'before');
  const writerOf = (key: string): number =>
    [...cluster.nodes.keys()].find((id) => cluster.node(id).requestsTo('PUT', '/v1/objects' + key).length > 0)!;
  const victim = writerOf(keys[0]!);
  await cluster.kill(victim);

  for (const key of keys) {
    const w = await client.put(key, 'after', { requestId: `after-${key}` });
    const versions = cluster.data.objects.get(key)!;
    t.equal(versions.length, 2, `${key}: applied once`);
    t.equal(versions[1]!.version, w.version);
    const receivers = [...cluster.nodes].filter(([, n]) => n.requestsTo('PUT', '/v1/objects' + key).some((r) => r.headers[ID] === `after-${key}`));
    t.equal(receivers.length, 1, `${key}: one live member took it`);
    t.ok(cluster.holders(key).members.includes(receivers[0]![0]), `${key}: a member of its shard`);
    t.not(receivers[0]![0], victim);
  }
  // Reads of the victim's shards keep being answered by the other members.
  for (let i = 0; i < 6; i++) t.equal((await client.get(keys[0]!)).value.toString(), 'after');
});

t.test('a view change: 503 view_change, then the new layout from /v1/cluster, the write retried on the new member', async (t) => {
  // Shard 1 is held by member 1 alone, so the client's writer for it is known.
  const { cluster, client } = await clusterAndClient(t, { nodes: 2, shards: 2, replicas: 1 });
  let key = '';
  for (let i = 0; key === ''; i++) if (cluster.holders(`/p/v${i}`).shard === 1) key = `/p/v${i}`;
  await client.put(key, 'one');
  t.equal(cluster.node(1).requestsTo('PUT', '/v1/objects' + key).length, 1);

  const joiner = await cluster.addNode();
  cluster.changeView('persistent/0', [[0], [2]]);
  cluster.node(1).fault({ kind: 'answer', method: 'PUT', status: 503, body: VIEW_CHANGE, headers: { 'retry-after': '0' } });
  const w = await client.put(key, 'two');
  const atOld = cluster.node(1).requestsTo('PUT', '/v1/objects' + key);
  const atNew = joiner.requestsTo('PUT', '/v1/objects' + key);
  t.equal(atOld.length, 2, 'the put met the view change at the old member');
  t.equal(atNew.length, 1, 'and was retried on the new one');
  t.equal(atNew[0]!.headers[ID], atOld[1]!.headers[ID], 'with the same request id');
  t.equal(cluster.data.objects.get(key)!.at(-1)!.version, w.version);
  t.equal(cluster.data.objects.get(key)!.length, 2, 'applied once');
  t.equal(client.routedView, 2, 'the client routes by the new view');
  await client.get(key);
  t.equal(joiner.requestsTo('GET', '/v1/objects' + key).length, 1, 'reads follow');
});

t.test('a stale layout: the old member forwards, and once the layout is refreshed requests go to the new member', async (t) => {
  const { cluster, client } = await clusterAndClient(t, { nodes: 3, shards: 2, replicas: 1 }, { layoutRefreshIntervalMs: 20 });
  let key = '';
  for (let i = 0; key === ''; i++) if (cluster.holders(`/p/m${i}`).shard === 1) key = `/p/m${i}`;
  await client.put(key, 'one');
  t.equal(cluster.node(1).requestsTo('PUT', '/v1/objects' + key).length, 1, 'member 1 held the shard');
  cluster.changeView('persistent/0', [[0], [2]]);
  // Until the client's background refresh lands, its writes go to member 1, which forwards them (no error).
  let n = 0;
  for (; n < 100 && cluster.node(2).requestsTo('PUT', '/v1/objects' + key).length === 0; n++) {
    await client.put(key, `v${n}`, { requestId: `moved-${n}` });
    await new Promise((r) => setTimeout(r, 10));
  }
  const atOld = cluster.node(1).requestsTo('PUT', '/v1/objects' + key).length - 1;
  const atNew = cluster.node(2).requestsTo('PUT', '/v1/objects' + key);
  t.equal(atNew.length, 1, `after ${n} puts one reached the new member`);
  t.equal(cluster.node(1).forwarded, atOld, `the old member forwarded the ${atOld} put(s) sent by the stale layout`);
  t.equal(atOld + atNew.length, n, 'each put was sent once: nothing was refused or retried');
  t.equal(cluster.data.objects.get(key)!.length, 1 + n, 'each applied once');
  t.equal(client.routedView, 2);
});

t.test('client.cluster() installs the layout it reads', async (t) => {
  const { cluster, client } = await clusterAndClient(t, { nodes: 3, shards: 1, replicas: 1 });
  await client.put('/p/x', '1');
  t.equal(cluster.node(0).requestsTo('PUT', '/v1/objects/p/x').length, 1);
  cluster.changeView('persistent/0', [[2]]);
  const info = await client.cluster();
  t.equal(info.view, 2);
  await client.put('/p/x', '2');
  t.equal(cluster.node(2).requestsTo('PUT', '/v1/objects/p/x').length, 1, 'the next write goes by the new layout');
  t.equal(cluster.node(0).requestsTo('PUT', '/v1/objects/p/x').length, 1, 'and not by the old one');
});

t.test('without routing every request goes to the seed, which forwards what it does not hold', async (t) => {
  const { cluster, client } = await clusterAndClient(t, { nodes: 3, shards: 3, replicas: 1 }, { routing: false });
  for (let i = 0; i < 12; i++) await client.put(`/p/f${i}`, 'x');
  t.equal(cluster.node(0).requestsTo('PUT', '/v1/objects/').length, 12);
  t.ok(cluster.node(0).forwarded > 0, `the seed forwarded ${cluster.node(0).forwarded}`);
  t.equal(cluster.node(0).requestsTo('GET', '/v1/cluster').length, 0, 'no layout was read');
  t.equal(client.routedView, null);

  const routed = new SquallClient({ url: cluster.node(0).url });
  t.teardown(() => routed.close());
  const before = cluster.node(0).forwarded;
  for (let i = 0; i < 12; i++) await routed.put(`/p/f${i}`, 'y');
  t.equal(cluster.node(0).forwarded, before, 'a routing client needs no forwarding');
});

t.test('seeds: a dead first seed is passed over for the layout and for requests', async (t) => {
  const { cluster } = await clusterAndClient(t, { nodes: 3, shards: 3, replicas: 2 });
  await cluster.kill(0);
  const client = new SquallClient({ urls: [cluster.node(0).url, cluster.node(1).url], retryDelayMs: 1, retryDelayMsMax: 5 });
  t.teardown(() => client.close());
  await client.put('/p/s', 'v');
  t.equal(client.routedView, 1, 'the layout came from the second seed');
  t.equal((await client.get('/p/s')).value.toString(), 'v');
  t.ok((await client.listPools()).length >= 1);
});
