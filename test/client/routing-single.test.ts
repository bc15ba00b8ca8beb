/**
 * Without a cluster layout the client behaves as the single-node client: one node (a one-member layout),
 * routing off, /v1/cluster missing or unreadable — every request goes to the one URL. Plus the layout reader
 * and the new options.
 */
import t from 'tap';
import { SquallClient } from '../../src/client/index.js';
import { readLayout } from '../../src/client/layout.js';
import { fakeAndClient } from '../fixtures/setup.js';

const trace = (reqs: { method: string; url: string }[]): string[] => reqs.map((r) => `${r.method} ${r.url}`);

t.test('one node: the layout is read once, then every request goes to it, no pool lookups', async (t) => {
  const { client, fake } = await fakeAndClient(t);
  await client.createPool('/p', { type: 'persistent' });
  await client.put('/p/a', '1');
  await client.get('/p/a');
  await client.batch([{ op: 'put', key: '/p/b', value: '2' }, { op: 'get', key: '/p/a' }], { requestId: 'b1' });
  t.same(trace(fake.requests), ['GET /v1/cluster', 'PUT /v1/pools/p', 'PUT /v1/objects/p/a', 'GET /v1/objects/p/a', 'POST /v1/batch']);
  t.equal(fake.requests.at(-1)!.headers['squall-request-id'], 'b1', 'a batch of one part keeps its id');
  t.equal(client.routedView, null, 'a one-member layout: nothing to route');
});

t.test('routing off: not even the layout is read', async (t) => {
  const { client, fake } = await fakeAndClient(t, { routing: false });
  await client.createPool('/p', { type: 'persistent' });
  await client.put('/p/a', '1');
  t.same(trace(fake.requests), ['PUT /v1/pools/p', 'PUT /v1/objects/p/a']);
});

t.test('a node without /v1/cluster, or with an answer the client cannot read: every request to the seed', async (t) => {
  const notFound = JSON.stringify({ error: { code: 'route_not_found', message: 'no route' } });
  const { client, fake } = await fakeAndClient(t);
  fake.fault({ kind: 'answer', match: /^\/v1\/cluster/, status: 404, body: notFound });
  await client.createPool('/p', { type: 'persistent' });
  await client.put('/p/a', '1');
  t.same(trace(fake.requests), ['GET /v1/cluster', 'PUT /v1/pools/p', 'PUT /v1/objects/p/a']);

  const { client: c2, fake: f2 } = await fakeAndClient(t);
  f2.fault({ kind: 'answer', match: /^\/v1\/cluster/, status: 200, body: JSON.stringify({ members: 'many' }) });
  await c2.createPool('/p', { type: 'persistent' });
  await c2.put('/p/a', '1');
  t.same(trace(f2.requests), ['GET /v1/cluster', 'PUT /v1/pools/p', 'PUT /v1/objects/p/a']);
  t.equal(c2.routedView, null);
});

t.test('a one-member layout naming another URL: requests still go to the seed', async (t) => {
  const { client, fake } = await fakeAndClient(t);
  const elsewhere = { ...fake.clusterInfo(), members: [{ id: 0, address: '10.9.9.9:1', http: 'http://10.9.9.9:1', status: 'up' }] };
  fake.fault({ kind: 'answer', match: /^\/v1\/cluster/, status: 200, body: JSON.stringify(elsewhere) });
  await client.createPool('/p', { type: 'persistent' });
  await client.put('/p/a', '1');
  t.equal(fake.requestsTo('PUT', '/v1/objects/p/a').length, 1);
});

t.test('urls: seeds checked and deduplicated, url first', async (t) => {
  const c = new SquallClient({ url: 'http://127.0.0.1:1', urls: ['http://127.0.0.1:2/', 'http://127.0.0.1:1'] });
  t.same(c.options.urls, ['http://127.0.0.1:1', 'http://127.0.0.1:2']);
  t.equal(c.options.url, 'http://127.0.0.1:1');
  t.equal(c.options.origin, 'http://127.0.0.1:1');
  await c.close();
  const only = new SquallClient({ urls: ['http://127.0.0.1:3'] });
  t.equal(only.options.url, 'http://127.0.0.1:3');
  await only.close();
  t.throws(() => new SquallClient({}), { code: 'bad_parameter', details: { option: 'url' } });
  t.throws(() => new SquallClient({ urls: [] }), { code: 'bad_parameter', details: { option: 'url' } });
  t.throws(() => new SquallClient({ urls: ['http://127.0.0.1:1', 'nope'] }), { code: 'bad_parameter', details: { option: 'urls' } });
  t.throws(() => new SquallClient({ url: 'http://127.0.0.1:1', memberSuspectMs: -1 }), { code: 'bad_parameter', details: { option: 'memberSuspectMs' } });
  t.throws(() => new SquallClient({ url: 'http://127.0.0.1:1', directoryCacheEntriesMax: 0 }), { code: 'bad_parameter', details: { option: 'directoryCacheEntriesMax' } });
});

t.test('readLayout: live members, shards by index, unknown and down members left out; unreadable answers say why', async (t) => {
  const layout = readLayout({
    view: 4,
    members: [
      { id: 2, http: 'http://127.0.0.1:8082/', status: 'up' },
      { id: 0, http: 'http://127.0.0.1:8080', status: 'up' },
      { id: 1, http: 'http://127.0.0.1:8081', status: 'down' },
    ],
    subgroups: [
      { type: 'metadata', subgroup: 0, shards: [{ shard: 0, members: [0, 1, 2] }] },
      { type: 'persistent', shards: [{ shard: 1, members: [2, 0] }, { shard: 0, members: [1, 7, 0] }] },
      { type: 'persistent', shards: [{ members: [2] }] },
    ],
    leader: 0,
  });
  if (typeof layout === 'string') throw new Error(layout);
  t.equal(layout.view, 4);
  t.same([...layout.members], [[2, 'http://127.0.0.1:8082'], [0, 'http://127.0.0.1:8080']]);
  t.same(layout.groups.get('persistent/0'), [[0], [0, 2]], 'shards by their index, members in id order, down and unknown ones out');
  t.same(layout.groups.get('persistent/1'), [[2]], 'a subgroup without an index is its rank among its type');
  t.same(layout.groups.get('metadata/0'), [[0, 2]]);
  for (const bad of [null, 'x', {}, { members: [], subgroups: 3 }, { members: [{ id: 'a' }], subgroups: [] }, { members: [{ id: 1, http: 'ftp://x' }], subgroups: [] }, { members: [], subgroups: [{ type: 'persistent' }] }]) {
    t.type(readLayout(bad), 'string', JSON.stringify(bad));
  }
});
