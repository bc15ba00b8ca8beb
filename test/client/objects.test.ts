import t from 'tap';
import { SquallError, formatTimeUs } from '../../src/api/index.js';
import { withPool, fakeAndClient } from '../fixtures/setup.js';

function queryOf(url: string): URLSearchParams {
  return new URLSearchParams(url.slice(url.indexOf('?') + 1));
}

t.test('put then get round-trips bytes, text and content type, with the write result', async (t) => {
  const { client } = await withPool(t);
  const bytes = Buffer.from([0, 1, 2, 254, 255]);
  const w1 = await client.put('/p/bin', bytes, { contentType: 'image/x-test' });
  t.equal(w1.key, '/p/bin');
  t.ok(Number.isSafeInteger(w1.version) && w1.version > 2 ** 32, 'version is a number above view 1');
  t.equal(w1.durability, 'persisted', 'persistent pool defaults to persisted');
  t.equal(w1.previous_version_by_key, null);
  const got = await client.get('/p/bin');
  t.same([...got.value], [...bytes]);
  t.equal(got.contentType, 'image/x-test');
  t.equal(got.version, w1.version);
  t.equal(got.timestampUs, w1.timestamp_us);
  t.equal(got.previousVersionByKey, null);

  const w2 = await client.put('/p/bin', 'héllo', { durability: 'delivered' });
  t.equal(w2.durability, 'delivered');
  t.equal(w2.previous_version_by_key, w1.version);
  const text = await client.get('/p/bin');
  t.equal(text.value.toString('utf8'), 'héllo');
  t.equal(text.contentType, 'text/plain; charset=utf-8');
  t.equal(text.previousVersionByKey, w1.version, 'previous version by key comes from its header');

  const empty = await client.put('/p/empty', new Uint8Array(0));
  const e = await client.get('/p/empty');
  t.equal(e.value.length, 0, 'an empty value is a value');
  t.equal(e.version, empty.version);
});

t.test('head gives metadata and size without a body', async (t) => {
  const { client, fake } = await withPool(t);
  const w = await client.put('/p/k', Buffer.alloc(1234, 7));
  const h = await client.head('/p/k');
  t.equal(h.sizeBytes, 1234);
  t.equal(h.version, w.version);
  t.equal(h.timestampUs, w.timestamp_us);
  t.notOk('value' in h);
  t.equal(fake.requestsTo('HEAD', '/v1/objects/p/k').length, 1);
});

t.test('reads by version and by time pick the newest value at or before the point', async (t) => {
  const { client, fake } = await withPool(t);
  const w1 = await client.put('/p/k', 'one');
  const w2 = await client.put('/p/k', 'two');
  const w3 = await client.put('/p/k', 'three');

  t.equal((await client.get('/p/k', { version: w2.version })).value.toString(), 'two');
  t.equal((await client.get('/p/k', { version: w3.version - 1 })).value.toString(), 'two');
  t.equal((await client.get('/p/k', { version: w3.version + 1000 })).value.toString(), 'three');

  // at: µs number, exactly at a version's timestamp, between two, and before the first.
  t.equal((await client.get('/p/k', { at: w1.timestamp_us })).value.toString(), 'one');
  t.equal((await client.get('/p/k', { at: w2.timestamp_us - 1 })).value.toString(), 'one');
  await t.rejects(client.get('/p/k', { at: w1.timestamp_us - 1 }), { code: 'not_found', status: 404 });

  // RFC 3339 with µs, and a Date (ms precision), are sent as µs integers.
  const rfc = formatTimeUs(w2.timestamp_us);
  t.equal((await client.get('/p/k', { at: rfc })).value.toString(), 'two');
  t.equal(queryOf(fake.requests.at(-1)!.url).get('at'), String(w2.timestamp_us), 'RFC 3339 sent as µs');
  const date = new Date(Math.floor(w3.timestamp_us / 1000));
  t.equal((await client.get('/p/k', { at: date })).value.toString(), 'three', "the fake's times are whole ms");
  t.equal(queryOf(fake.requests.at(-1)!.url).get('at'), String(date.getTime() * 1000), 'Date sent as ms * 1000');
  t.equal(formatTimeUs(w3.timestamp_us), '2025-11-25T12:00:00.004000Z', "the fake's clock: pool, then three writes, 1 ms apart");
  const offset = '2025-11-25T13:00:00.004000+01:00';
  t.equal((await client.get('/p/k', { at: offset })).value.toString(), 'three');
  t.equal(queryOf(fake.requests.at(-1)!.url).get('at'), String(w3.timestamp_us));

  // stable, consistency and wait_ms go on the query as given.
  await client.get('/p/k', { stable: true, consistency: 'linearizable', waitMs: 50 });
  const q = queryOf(fake.requests.at(-1)!.url);
  t.equal(q.get('stable'), 'true');
  t.equal(q.get('consistency'), 'linearizable');
  t.equal(q.get('wait_ms'), '50');
});

t.test('bad time and version arguments fail before anything is sent', async (t) => {
  const { client, fake } = await withPool(t);
  const before = fake.requests.length;
  for (const at of ['yesterday', '2025-13-01T00:00:00Z', '2025-02-30T00:00:00Z', '12:00', -5, 1.5, new Date(NaN)]) {
    await t.rejects(client.get('/p/k', { at }), { code: 'bad_parameter' }, `at=${String(at)}`);
  }
  await t.rejects(client.get('/p/k', { version: -1 }), { code: 'bad_parameter' });
  await t.rejects(client.get('/p/k', { version: 2 ** 60 }), { code: 'bad_parameter' });
  await t.rejects(client.get('/p/k', { version: 1, at: 1 }), { code: 'bad_parameter' });
  await t.rejects(client.list('/p', { version: 1, at: 1 }), { code: 'bad_parameter' });
  await t.rejects(client.put('/p/k', 'x', { ifMatch: 1.5 }), { code: 'bad_parameter' });
  t.equal(fake.requests.length, before, 'no request left the client');
});

t.test('header values from the caller are checked before sending: a bad one is a SquallError bad_parameter', async (t) => {
  const { client, fake } = await withPool(t);
  const before = fake.requests.length;
  const refused = async (p: Promise<unknown>, parameter: string, what: string): Promise<void> => {
    const err = await p.then(() => null, (e: unknown) => e);
    t.ok(err instanceof SquallError, `${what}: a SquallError`);
    t.match(err, { code: 'bad_parameter', status: 400, details: { parameter } }, what);
  };
  for (const contentType of ['a\nb', 'a\r\nX-Injected: 1', 'text/plain\u0000', 'tëxt/plain', '日本', ' text/plain', 'text/plain ', '']) {
    await refused(client.put('/p/k', 'x', { contentType }), 'contentType', `contentType ${JSON.stringify(contentType)}`);
  }
  await refused(client.put('/p/k', 'x', { contentType: 5 as unknown as string }), 'contentType', 'a contentType that is not a string');
  for (const requestId of ['id\n2', '', ' id']) {
    await refused(client.put('/p/k', 'x', { requestId }), 'requestId', `put requestId ${JSON.stringify(requestId)}`);
    await refused(client.delete('/p/k', { requestId }), 'requestId', 'delete requestId');
    await refused(client.batch([{ op: 'put', key: '/p/k', value: 'x' }], { requestId }), 'requestId', 'batch requestId');
    await refused(client.createPool('/q', { type: 'persistent' }, { requestId }), 'requestId', 'createPool requestId');
    await refused(client.deletePool('/p', { requestId }), 'requestId', 'deletePool requestId');
  }
  const durability = 'persisted\nx' as 'persisted';
  await refused(client.put('/p/k', 'x', { durability }), 'durability', 'put durability');
  await refused(client.batch([{ op: 'put', key: '/p/k', value: 'x' }], { durability }), 'durability', 'batch durability');
  t.equal(fake.requests.length, before, 'no request left the client');
  const w = await client.put('/p/k', 'x', { contentType: 'text/plain; charset="utf-8"', requestId: 'my id/1:2' });
  t.equal((await client.get('/p/k', { version: w.version })).contentType, 'text/plain; charset="utf-8"', 'inner blanks, quotes and punctuation are fine');
});

t.test('compare-and-put: If-Match and If-None-Match', async (t) => {
  const { client, fake } = await withPool(t);
  const w1 = await client.put('/p/k', 'a', { ifNoneMatch: true });
  t.equal(fake.requests.at(-1)!.headers['if-none-match'], '*');
  const err = await client.put('/p/k', 'b', { ifNoneMatch: true }).catch((e: unknown) => e);
  t.ok(err instanceof SquallError);
  t.match(err, { code: 'version_mismatch', status: 412, details: { current_version: w1.version } });
  const w2 = await client.put('/p/k', 'c', { ifMatch: w1.version });
  t.equal(fake.requests.at(-1)!.headers['if-match'], String(w1.version));
  await t.rejects(client.put('/p/k', 'd', { ifMatch: w1.version }), { code: 'version_mismatch', details: { current_version: w2.version } });
  t.equal((await client.get('/p/k')).value.toString(), 'c', 'the refused puts changed nothing');
});

t.test('delete writes a tombstone: 404 deleted with its version, history kept', async (t) => {
  const { client } = await withPool(t);
  const w = await client.put('/p/k', 'v');
  const d = await client.delete('/p/k');
  t.ok(d.version > w.version);
  t.equal(d.previous_version_by_key, w.version);
  await t.rejects(client.get('/p/k'), { code: 'deleted', status: 404, details: { version: d.version } });
  await t.rejects(client.head('/p/k'), { code: 'deleted', status: 404, details: { version: d.version } });
  t.equal((await client.get('/p/k', { version: w.version })).value.toString(), 'v', 'the old version stays readable');
  await t.rejects(client.delete('/p/k'), { code: 'not_found' }, 'deleting a deleted key is a 404');
  await t.rejects(client.delete('/p/never'), { code: 'not_found' });
  await t.rejects(client.delete('/p/k', { ifMatch: 1.5 }), { code: 'bad_parameter' });
});

t.test('history: one page and every page through the iterator', async (t) => {
  const { client, fake } = await withPool(t);
  const versions: number[] = [];
  for (let i = 0; i < 7; i++) versions.push((await client.put('/p/h', `v${i}`)).version);
  await client.delete('/p/h');
  const page = await client.history('/p/h', { limit: 3 });
  t.equal(page.key, '/p/h');
  t.same(page.versions.map((v) => v.version), versions.slice(0, 3));
  t.type(page.next, 'string');

  const before = fake.requests.length;
  const all = [];
  for await (const e of client.historyAll('/p/h', { limit: 3 })) all.push(e);
  t.same(all.slice(0, 7).map((e) => e.version), versions);
  t.equal(all.length, 8);
  t.equal(all[7]!.deleted, true, 'the delete is in the history');
  t.equal(fake.requests.length - before, 3, '8 versions in pages of 3');
  t.equal(queryOf(fake.requests[before]!.url).get('from'), null, 'the first page has no start');
  t.equal(queryOf(fake.requests[before + 1]!.url).get('from'), page.next, "the next page starts at the previous page's next");
  t.equal(queryOf(fake.requests[before + 1]!.url).get('limit'), '3');

  const ranged = await client.history('/p/h', { from: versions[2]!, to: versions[4]! });
  t.same(ranged.versions.map((v) => v.version), versions.slice(2, 5));
  t.equal(ranged.next, null);
});

t.test('list: current, at a time, with values, and every page', async (t) => {
  const { client } = await withPool(t);
  const writes = [];
  for (let i = 0; i < 5; i++) writes.push(await client.put(`/p/k${i}`, `value ${i}`));
  await client.delete('/p/k1');
  await client.put('/p/sub/x', 'x');

  const now = await client.list('/p');
  t.same(now.keys.map((k) => k.key), ['/p/k0', '/p/k2', '/p/k3', '/p/k4', '/p/sub/x'], 'deleted keys are not listed');
  t.equal(now.next, null);

  const past = await client.list('/p', { at: writes[2]!.timestamp_us });
  t.same(past.keys.map((k) => k.key), ['/p/k0', '/p/k1', '/p/k2'], 'as of the third write');

  const atVersion = await client.list('/p', { version: writes[1]!.version, values: true });
  t.same(atVersion.keys.map((k) => [k.key, Buffer.from(k.value!, 'base64').toString()]), [['/p/k0', 'value 0'], ['/p/k1', 'value 1']]);

  const prefixed = await client.list('/p', { prefix: '/p/sub/' });
  t.same(prefixed.keys.map((k) => k.key), ['/p/sub/x']);

  const all = [];
  for await (const k of client.listAll('/p', { limit: 2 })) all.push(k.key);
  t.same(all, ['/p/k0', '/p/k2', '/p/k3', '/p/k4', '/p/sub/x'], 'pages of 2 give every key once');
});

t.test('pools: create (201, then 200 when identical), get, list, conflict, delete', async (t) => {
  const { client, fake } = await fakeAndClient(t);
  const a = await client.createPool('/photos', { type: 'persistent', retain: { versions: 10 } });
  t.equal(a.path, '/photos');
  t.same(a.retain, { versions: 10 });
  t.same(JSON.parse(fake.requests.at(-1)!.body.toString()), { type: 'persistent', retain: { versions: 10 } }, 'spec sent as JSON');
  t.ok(fake.requests.at(-1)!.headers['squall-request-id'], 'pool creation carries a request id');
  const again = await client.createPool('/photos', { type: 'persistent' });
  t.equal(again.version, a.version, 'identical pool answered, not created twice');
  await t.rejects(client.createPool('/photos/cats', { type: 'volatile' }), { code: 'pool_conflict', status: 409 });
  t.same((await client.getPool('/photos')).path, '/photos');
  await client.createPool('/cams', { type: 'volatile', affinity: '^/cams/[^/]+/' });
  t.same((await client.listPools()).map((p) => p.path).sort(), ['/cams', '/photos']);
  await client.deletePool('/cams');
  await t.rejects(client.getPool('/cams'), { code: 'pool_not_found', status: 404 });
  await t.rejects(client.put('/cams/x/1', 'v'), { code: 'pool_not_found' });
  await t.rejects(client.createPool('no-slash', { type: 'volatile' }), { code: 'bad_key' });
});

t.test('cluster, health and readiness', async (t) => {
  const { client, fake } = await fakeAndClient(t);
  const c = await client.cluster();
  t.equal(c.view, 1);
  t.equal(c.members.length, 1);
  t.equal(c.subgroups[0]!.shards[0]!.members[0], 0);
  t.equal(await client.health(), true);
  t.equal(await client.ready(), true);
  fake.ready = false;
  t.equal(await client.ready(), false, '503 from /readyz is "not ready", not an error');
  t.equal(fake.requestsTo('GET', '/readyz').length, 2, 'no retry of the readiness probe');
});

t.test('keys are percent-encoded per segment and reach the server intact', async (t) => {
  const { client, fake } = await withPool(t);
  const key = '/p/dir with space/ünïcode?#&=+%';
  await client.put(key, 'v');
  t.equal(fake.requests.at(-1)!.url, '/v1/objects/p/dir%20with%20space/%C3%BCn%C3%AFcode%3F%23%26%3D%2B%25');
  t.equal((await client.get(key)).value.toString(), 'v');
  t.ok(fake.objects.has(key), 'stored under the exact key');
  const plain = '/p/a.b/c-d_e~f';
  await client.put(plain, 'w');
  t.equal(fake.requests.at(-1)!.url, '/v1/objects/p/a.b/c-d_e~f', 'unreserved characters are sent as they are');
});

t.test('bad keys fail locally with bad_key; with validateKeys off the server says so', async (t) => {
  const { client, fake } = await withPool(t);
  const before = fake.requests.length;
  for (const key of ['p/k', '/p', '/p//k', '/p/../k', '/p/./k', '']) {
    await t.rejects(client.put(key, 'v'), { code: 'bad_key', status: 400 }, `key '${key}'`);
    await t.rejects(client.get(key), { code: 'bad_key' });
  }
  t.equal(fake.requests.length, before, 'nothing sent');

  const { client: raw, fake: fake2 } = await withPool(t, { validateKeys: false });
  await t.rejects(raw.put('/p/../k', 'v'), { code: 'bad_key', status: 400 }, "the '..' segment reaches the server encoded");
  t.equal(fake2.requests.at(-1)!.url, '/v1/objects/p/%2E%2E/k');
});
