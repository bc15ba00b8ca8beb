import t from 'tap';
import { httpNode, raw } from '../fixtures/http-node.js';

/** What a read answers in its headers, and which query parameters it takes (API.md "Objects"). */

t.test('Squall-Previous-Version-By-Key is on every read: null on a key first version', async (t) => {
  const { node, client } = await httpNode(t);
  const u = node.url;
  await client.createPool('/p', { type: 'persistent' });
  const w1 = await client.put('/p/k', 'one');
  t.equal(w1.previous_version_by_key, null, 'the write result says null');
  const first = await raw(u, 'GET', '/v1/objects/p/k');
  t.equal(first.headers['squall-previous-version-by-key'], 'null', 'GET of the first version: null, as the write result');
  const firstHead = await raw(u, 'HEAD', '/v1/objects/p/k');
  t.equal(firstHead.headers['squall-previous-version-by-key'], 'null', 'HEAD too');
  t.equal((await client.get('/p/k')).previousVersionByKey, null, 'the client reads it as null');
  t.equal((await client.head('/p/k')).previousVersionByKey, null);
  const w2 = await client.put('/p/k', 'two');
  const second = await raw(u, 'GET', '/v1/objects/p/k');
  t.equal(second.headers['squall-previous-version-by-key'], String(w1.version), 'the second version names the first');
  t.equal((await client.get('/p/k')).previousVersionByKey, w1.version);
  const old = await raw(u, 'GET', `/v1/objects/p/k?version=${w1.version}`);
  t.equal(old.headers['squall-previous-version-by-key'], 'null', 'and a read of the first version still says null');
  t.equal((await client.get('/p/k', { version: w2.version })).previousVersionByKey, w1.version);
});

t.test('?history takes only the history parameters, and only bare or =true', async (t) => {
  const { node, client } = await httpNode(t);
  const u = node.url;
  await client.createPool('/h', { type: 'persistent' });
  const w = await client.put('/h/k', 'x');
  for (const q of ['history', 'history=true', 'history&limit=5', 'history=true&from=0&to=' + w.version]) {
    const r = await raw(u, 'GET', `/v1/objects/h/k?${q}`);
    t.equal(r.status, 200, `?${q}: 200`);
    t.same((r.json.versions as Array<{ version: number }>).map((v) => v.version), [w.version], `?${q}: the history`);
  }
  const refused: Array<[string, string]> = [
    ['history=false', 'history'],
    ['history=0', 'history'],
    ['history=1', 'history'],
    ['history=yes', 'history'],
    ['history&consistency=linearizable', 'consistency'],
    [`history&at=${w.timestamp_us}`, 'at'],
    [`history&version=${w.version}`, 'version'],
    ['history&stable=true', 'stable'],
    ['history&wait_ms=10', 'wait_ms'],
    ['from=0', 'from'],
    ['limit=2', 'limit'],
  ];
  for (const [q, parameter] of refused) {
    const r = await raw(u, 'GET', `/v1/objects/h/k?${q}`);
    t.equal(r.status, 400, `?${q}: 400`);
    t.equal(r.json.error?.code, 'bad_parameter', `?${q}: bad_parameter`);
    t.equal((r.json.error as Record<string, unknown> | undefined)?.parameter, parameter, `?${q}: names ${parameter}`);
  }
  const plain = await raw(u, 'GET', '/v1/objects/h/k');
  t.equal(plain.json.text, 'x', 'without ?history: the value');
});

t.test('a parameter given twice is refused on every route', async (t) => {
  const { node, client } = await httpNode(t);
  const u = node.url;
  await client.createPool('/r', { type: 'persistent' });
  const w1 = await client.put('/r/k', 'one');
  const w2 = await client.put('/r/k', 'two');
  const cases: Array<[string, string, string]> = [
    ['GET', `/v1/objects/r/k?version=${w1.version}&version=${w2.version}`, 'version'],
    ['HEAD', `/v1/objects/r/k?version=${w1.version}&version=${w1.version}`, 'version'],
    ['GET', '/v1/objects/r/k?history&history', 'history'],
    ['GET', '/v1/objects/r/k?history&limit=1&limit=2', 'limit'],
    ['GET', '/v1/objects/r/k?stable=true&stable=false', 'stable'],
    ['GET', '/v1/pools/r/keys?limit=1&limit=5', 'limit'],
    ['GET', '/v1/pools/r/keys?prefix=/r/a&prefix=/r/k', 'prefix'],
    ['GET', '/v1/watch?prefix=/r/&prefix=/x/', 'prefix'],
  ];
  for (const [method, path, parameter] of cases) {
    const r = await raw(u, method, path);
    t.equal(r.status, 400, `${method} ${path}: 400`);
    t.equal(r.headers['squall-error-code'], 'bad_parameter', `${method} ${path}: bad_parameter`);
    if (method !== 'HEAD') t.equal((r.json.error as Record<string, unknown> | undefined)?.parameter, parameter, `${method} ${path}: names ${parameter}`);
  }
  t.equal((await raw(u, 'GET', `/v1/objects/r/k?version=${w1.version}`)).json.text, 'one', 'once is fine');
});
