import t from 'tap';
import { clusterAndClient } from '../fixtures/cluster-client.js';
import { runCli } from '../fixtures/run-cli.js';

/**
 * The CLI pointed at one member of a (fake) cluster routes: a key's request goes to a member of its shard, so
 * nothing is forwarded; with --no-routing every request goes to --url, which forwards.
 */
t.test('squall --url MEMBER routes to the key shard; --no-routing sends to MEMBER', async (t) => {
  const { cluster } = await clusterAndClient(t, { nodes: 3, shards: 3, replicas: 1 });
  const seed = cluster.node(0);
  // Keys whose shard member 0 does not hold.
  const away: string[] = [];
  for (let i = 0; away.length < 2; i++) if (!cluster.holders(`/p/c${i}`).members.includes(0)) away.push(`/p/c${i}`);
  const [routed, direct] = away as [string, string];

  const put = await runCli(['put', routed, 'routed'], { url: seed.url });
  t.equal(put.code, 0, put.stderr);
  const holder = cluster.node(cluster.holders(routed).members[0]!);
  t.equal(holder.requestsTo('PUT', '/v1/objects' + routed).length, 1, 'the put went to the member of its shard');
  t.equal(seed.requestsTo('PUT', '/v1/objects' + routed).length, 0, 'not to --url');
  const get = await runCli(['get', routed], { url: seed.url });
  t.equal(get.code, 0, get.stderr);
  t.equal(get.out, 'routed');
  t.equal(holder.requestsTo('GET', '/v1/objects' + routed).length, 1, 'so did the get');
  t.equal(seed.forwarded, 0, '--url forwarded nothing');

  const plain = await runCli(['--no-routing', 'put', direct, 'direct'], { url: seed.url });
  t.equal(plain.code, 0, plain.stderr);
  t.equal(seed.requestsTo('PUT', '/v1/objects' + direct).length, 1, 'with --no-routing the put went to --url');
  t.equal(seed.forwarded, 1, 'which forwarded it');
  t.equal(cluster.data.objects.get(direct)![0]!.value!.toString(), 'direct');
});
