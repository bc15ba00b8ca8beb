import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import t from 'tap';
import { request } from 'undici';
import { isSquallError, type SquallError } from '../../src/api/errors.js';
import { httpNode, raw } from '../fixtures/http-node.js';

/** Every route of API.md through the client against a real node on port 0. */

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (isSquallError(e)) return (e as SquallError).code;
    throw e;
  }
}

/** A PUT with Expect: 100-continue that sends its body only if the server asks for it (bounded: 10 s). */
function expectContinue(url: string, length: number): Promise<{ continued: boolean; status: number | undefined }> {
  return new Promise((resolve, reject) => {
    let continued = false;
    const req = httpRequest(url, { method: 'PUT', headers: { expect: '100-continue', 'content-length': String(length) }, timeout: 10_000 });
    req.on('continue', () => {
      continued = true;
      req.end(Buffer.alloc(length, 1));
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => {
        req.destroy();
        resolve({ continued, status: res.statusCode });
      });
    });
    req.on('timeout', () => req.destroy(new Error('no answer in 10 s')));
    req.on('error', reject); // after the answer, a no-op
    req.flushHeaders();
  });
}

t.test('pools: create (201), identical (200), get, list, keys, delete', async (t) => {
  const { node, client } = await httpNode(t);
  const created = await raw(node.url, 'PUT', '/v1/pools/photos', JSON.stringify({ type: 'persistent', retain: { versions: 5 } }));
  t.equal(created.status, 201);
  t.match(created.json, { path: '/photos', type: 'persistent', subgroup: 0, shards: 2, retain: { versions: 5 }, deleted: false });
  const again = await raw(node.url, 'PUT', '/v1/pools/photos', JSON.stringify({ type: 'persistent', retain: { versions: 5 } }));
  t.equal(again.status, 200, 'identical pool exists: 200');
  const v = await client.createPool('/vol', { type: 'volatile' });
  t.equal(v.type, 'volatile');
  t.same((await client.listPools()).map((p) => p.path), ['/photos', '/vol']);
  t.equal((await client.getPool('/photos')).path, '/photos');
  await client.deletePool('/vol');
  t.equal((await client.getPool('/vol')).deleted, true);
  t.equal(await code(client.getPool('/none')), 'pool_not_found');
  t.equal(await code(client.deletePool('/none')), 'pool_not_found');
  await client.createPool('/gone', { type: 'volatile' });
  const headers = { 'squall-request-id': 'drop-1' };
  const deleted = await raw(node.url, 'DELETE', '/v1/pools/gone', undefined, headers);
  t.equal(deleted.status, 200);
  const retried = await raw(node.url, 'DELETE', '/v1/pools/gone', undefined, headers);
  t.equal(retried.status, 200, 'a retried delete (same Squall-Request-Id) answers the first result');
  t.same(retried.json, deleted.json);
  t.equal((await raw(node.url, 'DELETE', '/v1/pools/gone', undefined, { 'squall-request-id': 'drop-2' })).status, 404, 'another delete: pool_not_found');
});

t.test('objects: put, get, head, delete, history, If-Match, If-None-Match, content type, durability, request ids', async (t) => {
  const { node, client } = await httpNode(t);
  await client.createPool('/p', { type: 'persistent' });
  const w1 = await client.put('/p/a/b.txt', 'hello', { contentType: 'text/plain' });
  t.match(w1, { key: '/p/a/b.txt', durability: 'persisted', previous_version_by_key: null });
  const g = await client.get('/p/a/b.txt');
  t.equal(g.value.toString(), 'hello');
  t.equal(g.contentType, 'text/plain');
  t.equal(g.version, w1.version);
  t.equal(g.timestampUs, w1.timestamp_us);
  const etag = await raw(node.url, 'GET', '/v1/objects/p/a/b.txt');
  t.equal(etag.headers.etag, `"${w1.version}"`);
  const h = await client.head('/p/a/b.txt');
  t.equal(h.sizeBytes, 5);
  t.equal(h.version, w1.version);
  const w2 = await client.put('/p/a/b.txt', Buffer.from([0, 1, 2]), { ifMatch: w1.version, durability: 'delivered' });
  t.equal(w2.durability, 'delivered');
  t.equal(w2.previous_version_by_key, w1.version);
  t.equal(await code(client.put('/p/a/b.txt', 'x', { ifMatch: w1.version })), 'version_mismatch');
  const mismatch = await raw(node.url, 'PUT', '/v1/objects/p/a/b.txt', 'x', { 'if-match': `"${w1.version}"` });
  t.equal(mismatch.status, 412);
  t.equal(mismatch.json.error?.code, 'version_mismatch');
  t.equal((mismatch.json.error as Record<string, unknown>).current_version, w2.version, 'the current version is in the error');
  t.equal(await code(client.put('/p/a/b.txt', 'x', { ifNoneMatch: true })), 'version_mismatch');
  t.equal(await code(client.put('/p/new', 'x', { ifNoneMatch: true })), 'ok');
  const rid = client.newRequestId();
  const r1 = await client.put('/p/idem', 'once', { requestId: rid });
  const r2 = await client.put('/p/idem', 'once', { requestId: rid });
  t.same(r2, r1, 'a retried request id answers the first result');
  t.equal((await client.history('/p/idem')).versions.length, 1, 'applied once');
  const del = await client.delete('/p/a/b.txt');
  t.equal(del.previous_version_by_key, w2.version);
  t.equal(await code(client.get('/p/a/b.txt')), 'deleted');
  const deleted = await raw(node.url, 'GET', '/v1/objects/p/a/b.txt');
  t.equal(deleted.status, 404);
  t.equal(deleted.headers['squall-version'], String(del.version), 'Squall-Version of the delete');
  const headDeleted = await raw(node.url, 'HEAD', '/v1/objects/p/a/b.txt');
  t.equal(headDeleted.status, 404);
  t.equal(headDeleted.headers['squall-error-code'], 'deleted');
  t.equal(await code(client.delete('/p/a/b.txt')), 'deleted');
  t.equal(await code(client.delete('/p/never')), 'not_found');
  t.equal(await code(client.get('/p/never')), 'not_found');
  t.equal((await client.get('/p/a/b.txt', { version: w1.version })).value.toString(), 'hello', 'history stays readable');
  const hist = await client.history('/p/a/b.txt');
  t.same(hist.versions.map((v) => [v.version, v.deleted, v.size]), [[w1.version, false, 5], [w2.version, false, 3], [del.version, true, 0]]);
  const paged = [];
  for await (const e of client.historyAll('/p/a/b.txt', { limit: 1 })) paged.push(e.version);
  t.same(paged, [w1.version, w2.version, del.version], 'history pages');
  const linear = await client.get('/p/new', { consistency: 'linearizable' });
  t.equal(linear.value.toString(), 'x');
  const stable = await client.get('/p/new', { stable: true });
  t.equal(stable.value.toString(), 'x');
});

t.test('reads at a time, keys as of a time with values, paging, prefix', async (t) => {
  const { client } = await httpNode(t);
  await client.createPool('/k', { type: 'persistent' });
  const first = [];
  for (let i = 0; i < 7; i++) first.push(await client.put(`/k/item${i}`, `v1-${i}`));
  const cut = first[first.length - 1]!.timestamp_us;
  await client.put('/k/item0', 'v2-0');
  await client.delete('/k/item1');
  await client.put('/k/late', 'late');
  t.equal((await client.get('/k/item0', { at: cut })).value.toString(), 'v1-0');
  t.equal((await client.get('/k/item0', { at: new Date(Math.floor(cut / 1000) + 1) })).value.toString(), 'v1-0', 'a Date works');
  const past = await client.list('/k', { at: cut, values: true });
  t.same(past.keys.map((k) => k.key), first.map((w) => w.key).sort(), 'as of the cut');
  t.equal(Buffer.from(past.keys.find((k) => k.key === '/k/item0')!.value!, 'base64').toString(), 'v1-0');
  const now: string[] = [];
  for await (const k of client.listAll('/k', { limit: 2 })) now.push(k.key);
  t.same(now, ['/k/item0', '/k/item2', '/k/item3', '/k/item4', '/k/item5', '/k/item6', '/k/late']);
  const pre = await client.list('/k', { prefix: '/k/item1' });
  t.same(pre.keys, [], 'deleted keys are not listed');
  const stable = await client.list('/k', { stable: true });
  t.equal(stable.keys.length, 7);
  t.equal(await code(client.get('/k/item0', { at: Date.now() * 1000 + 60_000_000, waitMs: 50 })), 'not_yet_stable');
});

t.test('batch: JSON and msgpack, per-op results, order within a shard', async (t) => {
  const { client } = await httpNode(t);
  await client.createPool('/b', { type: 'persistent' });
  for (const encoding of ['json', 'msgpack'] as const) {
    const r = await client.batch(
      [
        { op: 'put', key: `/b/${encoding}`, value: 'one' },
        { op: 'get', key: `/b/${encoding}` },
        { op: 'put', key: `/b/${encoding}`, value: Buffer.from('two') },
        { op: 'get', key: `/b/${encoding}` },
        { op: 'delete', key: '/b/missing' },
        { op: 'get', key: '/nopool/x' },
        { op: 'put', key: 'bad key', value: 'x' },
      ],
      { encoding },
    );
    t.same(r.map((x) => x.status), [200, 200, 200, 200, 404, 404, 400], `${encoding}: statuses`);
    t.equal(r[1]!.value!.toString(), 'one', `${encoding}: a get sees the put before it`);
    t.equal(r[3]!.value!.toString(), 'two');
    t.equal(r[3]!.version, r[2]!.version);
    t.equal(r[4]!.error!.code, 'not_found');
    t.equal(r[5]!.error!.code, 'pool_not_found');
    t.equal(r[6]!.error!.code, 'bad_key');
  }
});

t.test('watch: events with ids, resume with Last-Event-ID', async (t) => {
  const { client } = await httpNode(t);
  await client.createPool('/w', { type: 'persistent' });
  const writes = [];
  for (let i = 0; i < 5; i++) writes.push(await client.put(`/w/k${i}`, `x${i}`));
  await client.delete('/w/k0');
  const seen = [];
  const ac = new AbortController();
  for await (const e of client.watch('/w/', { fromVersion: 0, signal: ac.signal })) {
    seen.push(e);
    if (seen.length === 6) ac.abort();
  }
  t.same(seen.map((e) => e.key), ['/w/k0', '/w/k1', '/w/k2', '/w/k3', '/w/k4', '/w/k0']);
  t.equal(seen[5]!.op, 'delete');
  t.match(seen[0]!.id, /^persistent\/0\/\d+:\d+$/);
  const resumed = [];
  const ac2 = new AbortController();
  const more = client.put('/w/k9', 'late');
  for await (const e of client.watch('/w/', { lastEventId: seen[2]!.id, signal: ac2.signal })) {
    resumed.push(e.id);
    if (resumed.length === 4) ac2.abort();
  }
  await more;
  t.same(resumed.slice(0, 3), seen.slice(3).map((e) => e.id), 'resumed right after the given event');
});

t.test('cluster, health, readiness, metrics', async (t) => {
  const { node, client } = await httpNode(t);
  const c = await client.cluster();
  t.equal(c.members.length, 1);
  t.equal(c.members[0]!.http, node.url);
  t.same(c.subgroups.map((s) => s.type), ['metadata', 'persistent', 'volatile']);
  t.ok(await client.health());
  t.ok(await client.ready());
  await client.createPool('/m', { type: 'persistent' });
  await client.put('/m/x', 'y');
  const m = await request(node.url + '/metrics');
  const text = await m.body.text();
  t.equal(m.statusCode, 200);
  t.match(text, /squall_http_requests_total\{method="PUT",route="objects",status="200"\} 1/);
  t.match(text, /squall_shard_persisted_frontier\{shard="persistent\/0\/\d"\}/);
  // the one put, in both stages of a write
  t.match(text, /squall_write_stage_seconds_count\{stage="ordered",durability="persisted"\} 1\n/);
  t.match(text, /squall_write_stage_seconds_count\{stage="synced_here",durability="persisted"\} 1\n/);
  t.match(text, /squall_write_stage_seconds_count\{stage="durable",durability="persisted"\} 1\n/);
});

t.test('every error code a single node can give, from a bad input that triggers it', async (t) => {
  const { node, client } = await httpNode(t, { limits: { valueBytesMax: 1024, batchBytesMax: 4096 } });
  const u = node.url;
  await client.createPool('/e', { type: 'persistent', retain: { versions: 1 } });
  const expect = async (what: string, r: Promise<{ status: number; json: { error?: { code: string; message: string } } }>, status: number, errCode: string) => {
    const got = await r;
    t.equal(got.status, status, `${what}: status ${status}`);
    t.equal(got.json.error?.code, errCode, `${what}: ${errCode}`);
    t.type(got.json.error?.message, 'string', `${what}: has a message`);
  };
  // 400 bad_key
  await expect('one-segment key', raw(u, 'PUT', '/v1/objects/e', 'x'), 400, 'bad_key');
  await expect('empty segment', raw(u, 'GET', '/v1/objects/e//x'), 400, 'bad_key');
  await expect('dot segment', raw(u, 'GET', '/v1/objects/e/%2E%2E/x'), 400, 'bad_key');
  await expect('bad percent-encoding', raw(u, 'GET', '/v1/objects/e/%ZZ'), 400, 'bad_key');
  await expect('key over 1024 bytes', raw(u, 'GET', '/v1/objects/e/' + 'x'.repeat(1100)), 400, 'bad_key');
  await expect('bad pool path', raw(u, 'PUT', '/v1/pools/a//b', '{"type":"persistent"}'), 400, 'bad_key');
  // 400 bad_parameter
  await expect('version not a number', raw(u, 'GET', '/v1/objects/e/k?version=abc'), 400, 'bad_parameter');
  await expect('negative version', raw(u, 'GET', '/v1/objects/e/k?version=-1'), 400, 'bad_parameter');
  await expect('at not a time', raw(u, 'GET', '/v1/objects/e/k?at=yesterday'), 400, 'bad_parameter');
  await expect('at bad date', raw(u, 'GET', '/v1/objects/e/k?at=2026-02-30T00:00:00Z'), 400, 'bad_parameter');
  await expect('version and at', raw(u, 'GET', '/v1/objects/e/k?version=1&at=5'), 400, 'bad_parameter');
  await expect('unknown parameter', raw(u, 'GET', '/v1/objects/e/k?versoin=1'), 400, 'bad_parameter');
  await expect('bad consistency', raw(u, 'GET', '/v1/objects/e/k?consistency=strong'), 400, 'bad_parameter');
  await expect('wait_ms too large', raw(u, 'GET', '/v1/objects/e/k?at=5&wait_ms=99999999'), 400, 'bad_parameter');
  await expect('limit 0', raw(u, 'GET', '/v1/objects/e/k?history&limit=0'), 400, 'bad_parameter');
  await expect('bad If-Match', raw(u, 'PUT', '/v1/objects/e/k', 'x', { 'if-match': 'soon' }), 400, 'bad_parameter');
  await expect('bad durability', raw(u, 'PUT', '/v1/objects/e/k', 'x', { 'squall-durability': 'eventually' }), 400, 'bad_parameter');
  await expect('bad affinity regex', raw(u, 'PUT', '/v1/pools/re', '{"type":"persistent","affinity":"("}'), 400, 'bad_parameter');
  await expect('subgroup not in layout', raw(u, 'PUT', '/v1/pools/sg', '{"type":"persistent","subgroup":7}'), 400, 'bad_parameter');
  await expect('bad cursor', raw(u, 'GET', '/v1/pools/e/keys?cursor=zzz'), 400, 'bad_parameter');
  // 400 bad_body
  await expect('pool spec not JSON', raw(u, 'PUT', '/v1/pools/x', '{type:'), 400, 'bad_body');
  await expect('pool spec bad type', raw(u, 'PUT', '/v1/pools/x', '{"type":"durable"}'), 400, 'bad_body');
  await expect('pool spec unknown field', raw(u, 'PUT', '/v1/pools/x', '{"type":"persistent","shards":3}'), 400, 'bad_body');
  await expect('batch not JSON', raw(u, 'POST', '/v1/batch', '{"ops": [', { 'content-type': 'application/json' }), 400, 'bad_body');
  await expect('batch without ops', raw(u, 'POST', '/v1/batch', '{"operations":[]}', { 'content-type': 'application/json' }), 400, 'bad_body');
  await expect('batch op unknown', raw(u, 'POST', '/v1/batch', '{"ops":[{"op":"upsert","key":"/e/k"}]}', { 'content-type': 'application/json' }), 400, 'bad_body');
  await expect('batch value not base64', raw(u, 'POST', '/v1/batch', '{"ops":[{"op":"put","key":"/e/k","value":"%%%"}]}', { 'content-type': 'application/json' }), 400, 'bad_body');
  await expect('batch wrong content type', raw(u, 'POST', '/v1/batch', '{"ops":[]}', { 'content-type': 'text/plain' }), 400, 'bad_body');
  // 404
  await expect('unknown pool', raw(u, 'PUT', '/v1/objects/nopool/k', 'x'), 404, 'pool_not_found');
  await expect('missing key', raw(u, 'GET', '/v1/objects/e/missing'), 404, 'not_found');
  await raw(u, 'PUT', '/v1/objects/e/gone', 'x');
  await raw(u, 'DELETE', '/v1/objects/e/gone');
  await expect('deleted key', raw(u, 'GET', '/v1/objects/e/gone'), 404, 'deleted');
  await expect('unknown route', raw(u, 'GET', '/v2/objects/e/k'), 404, 'route_not_found');
  // 409
  await expect('nested pool', raw(u, 'PUT', '/v1/pools/e/sub', '{"type":"persistent"}'), 409, 'pool_conflict');
  await expect('different spec', raw(u, 'PUT', '/v1/pools/e', '{"type":"volatile"}'), 409, 'pool_conflict');
  // 410
  const v1 = (await raw(u, 'PUT', '/v1/objects/e/trim', 'one')).json.version as number;
  await raw(u, 'PUT', '/v1/objects/e/trim', 'two');
  await expect('version below retention', raw(u, 'GET', `/v1/objects/e/trim?version=${v1}`), 410, 'trimmed');
  // 412
  await expect('stale If-Match', raw(u, 'PUT', '/v1/objects/e/trim', 'x', { 'if-match': String(v1) }), 412, 'version_mismatch');
  // 413, checked before the body is read (Content-Length) and while reading (chunked)
  await expect('value over the limit', raw(u, 'PUT', '/v1/objects/e/big', Buffer.alloc(2048)), 413, 'too_large');
  const chunked = await request(u + '/v1/objects/e/big', {
    method: 'PUT',
    body: Readable.from(Array.from({ length: 8 }, () => Buffer.alloc(512))),
  });
  t.equal(chunked.statusCode, 413, 'chunked upload over the limit: 413');
  t.equal(((await chunked.body.json()) as { error: { code: string } }).error.code, 'too_large');
  // Expect: 100-continue: an oversized value is refused before the client sends it; an allowed one is asked for
  const refused = await expectContinue(u + '/v1/objects/e/big', 2048);
  t.same(refused, { continued: false, status: 413 }, 'no 100 Continue for a value over the limit, 413 at once');
  const accepted = await expectContinue(u + '/v1/objects/e/small', 512);
  t.same(accepted, { continued: true, status: 200 }, '100 Continue, then the value is stored');
  t.equal((await client.get('/e/small')).value.length, 512);
  await expect('batch over the limit', raw(u, 'POST', '/v1/batch', JSON.stringify({ ops: [{ op: 'put', key: '/e/k', value: Buffer.alloc(4000).toString('base64') }] }), { 'content-type': 'application/json' }), 413, 'too_large');
  t.equal(await code(client.get('/e/missing')), 'not_found', 'still serving after all that');
  // 425
  await expect('time not yet stable', raw(u, 'GET', `/v1/objects/e/trim?at=${Date.now() * 1000 + 60_000_000}&wait_ms=20`), 425, 'not_yet_stable');
  // 503 no_quorum / view_change need a cluster (test/cluster).
});
