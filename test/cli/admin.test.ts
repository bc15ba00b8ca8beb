import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { FakeSquall } from '../fixtures/fake-squall.js';
import { runCli, runCliAll } from '../fixtures/run-cli.js';
import { TIME_RE } from '../fixtures/setup.js';

const fake = new FakeSquall();
const url = await fake.start();
t.teardown(() => fake.stop());

t.test('pools: create, list, get, delete, and a conflict', async (t) => {
  const created = await runCli(['pools', 'create', '/photos', '--type', 'persistent', '--retain-versions', '100', '--retain-seconds', '3600'], { url });
  t.equal(created.code, 0, created.stderr);
  t.match(created.out, /^path\s+\/photos\ntype\s+persistent\n/);
  t.match(created.out, /retain\s+100 versions, 3600 s\n/);
  t.same(JSON.parse(fake.requestsTo('PUT', '/v1/pools/photos')[0]!.body.toString()), { type: 'persistent', retain: { versions: 100, seconds: 3600 } });

  const [json, list, get, conflict] = await runCliAll([
    [['pools', 'create', '/cams', '--type', 'volatile', '--affinity', '^/cams/[^/]+/', '--json'], { url }],
    [['pools'], { url }],
    [['pools', 'get', '/photos', '--json'], { url }],
    [['pools', 'create', '/photos/cats', '--type', 'volatile'], { url }],
  ]);
  t.equal(json.code, 0, json.stderr);
  t.match(JSON.parse(json.out), { path: '/cams', type: 'volatile', affinity: '^/cams/[^/]+/' });
  t.equal(list.code, 0);
  const rows = list.out.trimEnd().split('\n');
  t.match(rows[0], /^PATH\s+TYPE\s+SUBGROUP\s+SHARDS\s+AFFINITY\s+RETAIN\s+CREATED$/);
  t.ok(rows.some((r) => new RegExp(`^/photos\\s+persistent\\s+0\\s+1\\s+-\\s+100 versions, 3600 s\\s+${TIME_RE.source}$`).test(r)), 'the /photos row');
  t.match(JSON.parse(get.out), { path: '/photos', retain: { versions: 100, seconds: 3600 } });
  t.equal(conflict.code, 1);
  t.match(conflict.stderr, /^error pool_conflict: /);

  const [del, gone] = await runCliAll([[['pools', 'delete', '/cams'], { url }], [['pools', 'get', '/nope'], { url }]]);
  t.equal(del.code, 0, del.stderr);
  t.equal(del.out, 'deleted pool /cams\n');
  t.equal(fake.pools.get('/cams')!.deleted, true);
  t.equal(gone.code, 1);
  t.match(gone.stderr, /^error pool_not_found: /);
});

t.test('status: health, readiness, view, members and shards', async (t) => {
  const human = await runCli(['status'], { url });
  t.equal(human.code, 0, human.stderr);
  t.match(human.out, new RegExp(`^node\\s+${url.replaceAll('.', '\\.')}  up, ready\nview\\s+1  leader 0\n`));
  t.match(human.out, /\nmembers\nID\s+ADDRESS\s+HTTP\s+STATUS\n0\s+127\.0\.0\.1:7000\s+http:\/\/127\.0\.0\.1:\d+\s+up\n/);
  t.match(human.out, new RegExp(`\\nshards\\nTYPE\\s+SUBGROUP\\s+SHARD\\s+MEMBERS\\s+DELIVERED\\s+PERSISTED\\s+STABLE UNTIL\\npersistent\\s+0\\s+0\\s+0\\s+\\d+\\s+\\d+\\s+${TIME_RE.source}\\n$`));
  fake.ready = false;
  t.teardown(() => (fake.ready = true));
  const json = await runCli(['status', '--json'], { url });
  t.equal(json.code, 0, json.stderr);
  t.match(JSON.parse(json.out), { url, healthy: true, ready: false, cluster: { view: 1, leader: 0, members: [{ id: 0 }] } });
});

t.test('status of a stalled node (it takes the connection, never answers): a clear error within seconds', async (t) => {
  const stalled = createServer(() => undefined);
  await new Promise<void>((r) => stalled.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    stalled.closeAllConnections();
    return new Promise<void>((r) => stalled.close(() => r()));
  });
  const r = await runCli(['status'], { url: `http://127.0.0.1:${(stalled.address() as AddressInfo).port}` });
  t.equal(r.code, 1);
  t.match(r.stderr, /error unavailable: no answer from http:\/\/127\.0\.0\.1:\d+ within 5 s: the node is stalled or overloaded/);
});
