/**
 * Batches over a fake cluster: split by shard, parts sent in parallel to members of their shards with ids
 * derived from the batch's, results put back in the order of the ops, errors kept per op.
 */
import { Unpackr } from 'msgpackr';
import t from 'tap';
import type { BatchOpInput } from '../../src/client/index.js';
import { clusterAndClient } from '../fixtures/cluster-client.js';
import type { FakeCluster } from '../fixtures/fake-cluster.js';

const unpackr = new Unpackr({ useRecords: false });
const ID = 'squall-request-id';

/** Every POST /v1/batch each member received: member id, request id, and the keys of its ops in order. */
function batchesSeen(cluster: FakeCluster): { member: number; id: string; keys: string[]; ops: Record<string, unknown>[] }[] {
  const out = [];
  for (const [member, node] of cluster.nodes) {
    for (const r of node.requestsTo('POST', '/v1/batch')) {
      const json = r.headers['content-type'] === 'application/json';
      const ops = ((json ? JSON.parse(r.body.toString()) : unpackr.unpack(r.body)) as { ops: Record<string, unknown>[] }).ops;
      out.push({ member, id: String(r.headers[ID]), keys: ops.map((o) => String(o.key)), ops });
    }
  }
  return out;
}

/** `n` keys of each of the pool's shards, interleaved by shard. */
function keysPerShard(cluster: FakeCluster, shards: number, n: number): string[][] {
  const byShard: string[][] = Array.from({ length: shards }, () => []);
  for (let i = 0; byShard.some((k) => k.length < n); i++) {
    const key = `/p/b${i}`;
    const list = byShard[cluster.holders(key).shard]!;
    if (list.length < n) list.push(key);
  }
  return byShard;
}

for (const encoding of ['msgpack', 'json'] as const) {
  t.test(`a batch (${encoding}) is split by shard, its parts go to members of their shards, results come back in order`, async (t) => {
    const { cluster, client } = await clusterAndClient(t, { nodes: 3, shards: 3, replicas: 2 });
    const [s0, s1, s2] = keysPerShard(cluster, 3, 3) as [string[], string[], string[]];
    const old = await client.put(s1[2]!, 'old');
    const ops: BatchOpInput[] = [
      { op: 'put', key: s0[0]!, value: 'a1' },
      { op: 'put', key: s1[0]!, value: 'b1' },
      { op: 'get', key: s0[0]! }, // after the put of the same key: sees it
      { op: 'put', key: s2[0]!, value: Buffer.from([1, 2, 3]) },
      { op: 'get', key: s2[1]! }, // absent: 404 for this op only
      { op: 'put', key: s0[0]!, value: 'a2' },
      { op: 'put', key: s1[1]!, value: 'x', if_match: 1 }, // wrong version: 412 for this op only
      { op: 'delete', key: s1[2]! },
      { op: 'get', key: s0[0]! },
      { op: 'get', key: s1[2]!, version: old.version },
      { op: 'get', key: '/nopool/k' }, // under no pool: goes to any member, 404 pool_not_found
    ];
    const results = await client.batch(ops, { encoding, requestId: 'batch-7' });

    t.equal(results.length, ops.length);
    t.match(results[0], { status: 200, key: s0[0] });
    t.match(results[1], { status: 200, key: s1[0] });
    t.equal(results[2]!.value!.toString(), 'a1', 'ops of one shard keep their order');
    t.match(results[3], { status: 200, key: s2[0] });
    t.match(results[4], { status: 404, error: { code: 'not_found' } });
    t.match(results[5], { status: 200, key: s0[0] });
    t.ok(results[5]!.version! > results[0]!.version!);
    t.match(results[6], { status: 412, error: { code: 'version_mismatch' } });
    t.match(results[7], { status: 200, key: s1[2] });
    t.equal(results[8]!.value!.toString(), 'a2');
    t.equal(results[9]!.value!.toString(), 'old');
    t.match(results[10], { status: 404, error: { code: 'pool_not_found' } });

    const seen = batchesSeen(cluster);
    t.equal(seen.length, 4, 'one request per shard, and one for the key under no pool');
    const byId = new Map(seen.map((b) => [b.id, b]));
    for (let shard = 0; shard < 3; shard++) {
      const part = byId.get(`batch-7/persistent/0/${shard}`);
      t.ok(part, `the part of shard ${shard} carries the id batch-7/persistent/0/${shard}`);
      t.ok(cluster.holders(part!.keys[0]!).members.includes(part!.member), `shard ${shard}'s part went to one of its members`);
      t.ok(part!.keys.every((k) => cluster.holders(k).shard === shard), `shard ${shard}'s part holds only its keys`);
      t.same(part!.keys, ops.map((o) => o.key).filter((k) => k.startsWith('/p/') && cluster.holders(k).shard === shard), 'in the order of the batch');
    }
    t.same(byId.get('batch-7/any')?.keys, ['/nopool/k']);
    for (const [id, node] of cluster.nodes) t.equal(node.forwarded, 0, `member ${id} forwarded no part`);
  });
}

t.test('a batch of one shard is sent whole, with the batch id', async (t) => {
  const { cluster, client } = await clusterAndClient(t, { nodes: 3, shards: 3, replicas: 2 });
  const [s0] = keysPerShard(cluster, 3, 3) as [string[]];
  const results = await client.batch(s0.map((key) => ({ op: 'put', key, value: 'v' })), { requestId: 'one-shard' });
  t.same(results.map((r) => r.status), [200, 200, 200]);
  const seen = batchesSeen(cluster);
  t.equal(seen.length, 1);
  t.equal(seen[0]!.id, 'one-shard');
  t.ok(cluster.holders(s0[0]!).members.includes(seen[0]!.member));
});

t.test('a part whose answer is lost is retried on another member with the same id and applied once', async (t) => {
  const { cluster, client } = await clusterAndClient(t, { nodes: 3, shards: 3, replicas: 2 });
  const [s0, s1] = keysPerShard(cluster, 3, 2) as [string[], string[]];
  // Learn which member writes shard 0 for this client, then make it lose its next batch answer.
  await client.batch([{ op: 'put', key: s0[0]!, value: 'warm' }]);
  const writer = batchesSeen(cluster)[0]!.member;
  cluster.node(writer).fault({ kind: 'reset-after', method: 'POST', requestId: 'lossy/persistent/0/0' });
  const ops: BatchOpInput[] = [...s0, ...s1].map((key) => ({ op: 'put', key, value: 'x' }));
  const results = await client.batch(ops, { requestId: 'lossy' });
  t.same(results.map((r) => r.status), [200, 200, 200, 200]);
  const parts = batchesSeen(cluster).filter((b) => b.id === 'lossy/persistent/0/0');
  t.equal(parts.length, 2, 'the part of shard 0 was sent twice');
  t.equal(parts.filter((p) => p.member === writer).length, 1, 'first to its writer');
  t.ok(parts.some((p) => p.member !== writer && cluster.holders(s0[0]!).members.includes(p.member)), 'then to the other member of the shard');
  t.equal(cluster.data.objects.get(s0[0]!)!.length, 2, 'warm-up + once');
  t.equal(cluster.data.objects.get(s0[1]!)!.length, 1, 'once');
  t.equal(results[0]!.version, cluster.data.objects.get(s0[0]!)![1]!.version, 'the retry returned the first result');
});

t.test('a part that fails as a whole gives its ops that error; the other parts keep their results', async (t) => {
  const { cluster, client } = await clusterAndClient(t, { nodes: 3, shards: 3, replicas: 2 });
  const [s0, s1] = keysPerShard(cluster, 3, 2) as [string[], string[]];
  const noQuorum = JSON.stringify({ error: { code: 'no_quorum', message: 'shard 1 has no quorum' } });
  for (const id of cluster.holders(s1[0]!).members) {
    cluster.node(id).fault({ kind: 'answer', method: 'POST', requestId: 'q/persistent/0/1', status: 503, body: noQuorum, times: 10 });
  }
  const ops: BatchOpInput[] = [s0[0]!, s1[0]!, s0[1]!, s1[1]!].map((key) => ({ op: 'put', key, value: 'x' }));
  const results = await client.batch(ops, { requestId: 'q' });
  t.match(results[0], { status: 200, key: s0[0] });
  t.match(results[1], { status: 503, error: { code: 'no_quorum', message: 'shard 1 has no quorum' } });
  t.match(results[2], { status: 200, key: s0[1] });
  t.match(results[3], { status: 503, error: { code: 'no_quorum' } });
  t.equal(cluster.data.objects.get(s1[0]!), undefined, 'nothing of the failed part was applied');
});
