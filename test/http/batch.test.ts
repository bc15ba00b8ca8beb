import t from 'tap';
import { httpNode, raw } from '../fixtures/http-node.js';

/** POST /v1/batch: reads run together, conditions go per op, and request ids follow the single-request rule. */

const JSON_TYPE = { 'content-type': 'application/json' };
const b64 = (s: string): string => Buffer.from(s).toString('base64');

interface Result {
  status: number;
  version?: number;
  value?: string;
  error?: { code: string; message: string };
}

function resultsOf(r: { json: Record<string, unknown> }): Result[] {
  return (r.json.results ?? []) as Result[];
}

t.test('the gets of a batch wait together, not one after another', async (t) => {
  const { node, client } = await httpNode(t);
  await client.createPool('/b', { type: 'persistent' });
  await client.put('/b/k', 'x');
  const futureUs = Date.now() * 1000 + 60_000_000; // never stable within the default wait of 2000 ms
  const ops = Array.from({ length: 5 }, () => ({ op: 'get', key: '/b/k', at: futureUs }));
  const start = performance.now();
  const r = await raw(node.url, 'POST', '/v1/batch', JSON.stringify({ ops }), JSON_TYPE);
  const elapsedMs = performance.now() - start;
  t.equal(r.status, 200);
  t.same(resultsOf(r).map((x) => x.error?.code), Array(5).fill('not_yet_stable'), 'each get waited and gave up');
  t.ok(elapsedMs < 2 * 2000, `5 gets took ${Math.round(elapsedMs)} ms: one wait, not five`);
});

t.test('gets that read together still see exactly the writes before them', async (t) => {
  const { node, client } = await httpNode(t);
  await client.createPool('/o', { type: 'persistent' });
  const ops = [
    { op: 'put', key: '/o/k', value: b64('one') },
    { op: 'get', key: '/o/k' },
    { op: 'get', key: '/o/k' },
    { op: 'get', key: '/o/missing' },
    { op: 'put', key: '/o/k', value: b64('two') },
    { op: 'get', key: '/o/k' },
    { op: 'delete', key: '/o/k' },
    { op: 'get', key: '/o/k' },
    { op: 'put', key: '/o/k', value: b64('three') },
  ];
  const r = await raw(node.url, 'POST', '/v1/batch', JSON.stringify({ ops }), JSON_TYPE);
  const results = resultsOf(r);
  t.same(results.map((x) => x.status), [200, 200, 200, 404, 200, 200, 200, 404, 200], 'statuses in op order');
  t.same([1, 2, 5].map((i) => Buffer.from(results[i]!.value!, 'base64').toString()), ['one', 'one', 'two'], 'values in op order');
  t.equal(results[1]!.version, results[0]!.version, 'the gets read the first put');
  t.equal(results[5]!.version, results[4]!.version, 'the get after the second put reads it');
  t.equal(results[7]!.error?.code, 'deleted', 'the get after the delete sees it, not the put after it');
  t.equal((await client.get('/o/k')).value.toString(), 'three');
});

t.test('If-Match and If-None-Match headers on a batch are refused: conditions go per op', async (t) => {
  const { node, client } = await httpNode(t);
  await client.createPool('/c', { type: 'persistent' });
  const w = await client.put('/c/k', 'x');
  const body = JSON.stringify({ ops: [{ op: 'put', key: '/c/k', value: b64('y') }] });
  for (const [name, value] of [
    ['if-match', String(w.version)],
    ['if-match', `"${w.version + 1}"`],
    ['if-none-match', '*'],
  ] as const) {
    const r = await raw(node.url, 'POST', '/v1/batch', body, { ...JSON_TYPE, [name]: value });
    t.equal(r.status, 400, `${name}: 400`);
    t.equal(r.json.error?.code, 'bad_parameter', `${name}: bad_parameter`);
    t.match(r.json.error?.message, /per op|each op/, `${name}: says where conditions go`);
  }
  t.equal((await client.get('/c/k')).value.toString(), 'x', 'nothing was written');
  const perOp = await raw(node.url, 'POST', '/v1/batch', JSON.stringify({ ops: [{ op: 'put', key: '/c/k', value: b64('y'), if_match: w.version + 1 }] }), JSON_TYPE);
  t.equal(resultsOf(perOp)[0]!.error?.code, 'version_mismatch', 'the per-op condition applies');
});

t.test('a batch request id follows the rule of a single request', async (t) => {
  const { node, client } = await httpNode(t);
  const u = node.url;
  await client.createPool('/i', { type: 'persistent' });
  const put = (id: string): ReturnType<typeof raw> => raw(u, 'PUT', '/v1/objects/i/single', 'x', { 'squall-request-id': id });
  const batch = (id: string, n = 3): ReturnType<typeof raw> =>
    raw(u, 'POST', '/v1/batch', JSON.stringify({ ops: Array.from({ length: n }, (_, i) => ({ op: 'put', key: `/i/k${i}`, value: b64(id.slice(0, 8)) })) }), {
      ...JSON_TYPE,
      'squall-request-id': id,
    });

  for (const [what, id] of [
    ['empty', ''],
    ['129 bytes', 'x'.repeat(129)],
    ['over 128 bytes in UTF-8', 'é'.repeat(65)],
  ] as const) {
    const single = await put(id);
    const many = await batch(id);
    t.equal(single.status, 400, `${what}: a single PUT refuses it`);
    t.equal(many.status, 400, `${what}: so does a batch`);
    t.equal(many.json.error?.code, 'bad_parameter', `${what}: bad_parameter`);
    t.match(many.json.error?.message, /128 bytes/, `${what}: names the limit`);
  }
  t.equal((await client.history('/i/k0').catch(() => null))?.versions.length ?? 0, 0, 'no refused batch wrote anything');

  for (const [what, id] of [
    ['short', 'batch-id-1'],
    ['128 bytes', 'y'.repeat(128)],
    ['125 bytes', 'z'.repeat(125)],
  ] as const) {
    t.equal((await put(id)).status, 200, `${what}: a single PUT takes it`);
    const first = await batch(id, 12);
    t.same(resultsOf(first).map((x) => x.status), Array(12).fill(200), `${what}: every op of a batch succeeds`);
    const retry = await batch(id, 12);
    t.same(resultsOf(retry).map((x) => x.version), resultsOf(first).map((x) => x.version), `${what}: a retry answers the first results`);
  }
  const history = await client.history('/i/k11');
  t.equal(history.versions.length, 3, 'each batch applied once: one version of the last op per distinct id');
});

t.test('a request id limit too small for a derived id is refused with the limit named', async (t) => {
  const { node, client } = await httpNode(t, { limits: { requestIdBytesMax: 8 } });
  await client.createPool('/s', { type: 'persistent' });
  const body = JSON.stringify({ ops: [{ op: 'put', key: '/s/a', value: b64('a') }, { op: 'put', key: '/s/b', value: b64('b') }] });
  const fits = await raw(node.url, 'POST', '/v1/batch', body, { ...JSON_TYPE, 'squall-request-id': 'abcdef' });
  t.same(resultsOf(fits).map((x) => x.status), [200, 200], "an id that leaves room for ':<index>' works");
  const tight = await raw(node.url, 'POST', '/v1/batch', body, { ...JSON_TYPE, 'squall-request-id': 'abcdefgh' });
  t.equal(tight.status, 400, 'an 8-byte id leaves no room for a safe derived id under an 8-byte limit');
  t.equal(tight.json.error?.code, 'bad_parameter');
  t.match(tight.json.error?.message, /at most 6 bytes.*limit is 8 bytes/, 'the message names the limit and what fits');
  t.equal((await client.history('/s/b')).versions.length, 1, 'the refused batch wrote nothing');
});
