import t from 'tap';
import { Client } from 'undici';
import { httpNode, raw } from '../fixtures/http-node.js';

/**
 * Keys and pool paths have no '.' or '..' segment (API.md). The request path must be refused as sent, not
 * after URL normalization turned it into another key or another route. `raw` (test/fixtures) sends its
 * path through `new URL()`, which removes dot segments the way `curl` does without --path-as-is, so these
 * requests go through an undici Client, which puts the path on the request line verbatim.
 */
async function asIs(origin: string, method: string, path: string, body?: string): Promise<{ status: number; code: string | undefined; message: string }> {
  const client = new Client(origin);
  try {
    const r = await client.request({ method: method as 'GET', path, body: body ?? null });
    const text = await r.body.text();
    const error = text ? (JSON.parse(text) as { error?: { code: string; message: string } }).error : undefined;
    return { status: r.statusCode, code: error?.code, message: error?.message ?? '' };
  } finally {
    await client.close();
  }
}

t.test('a dot segment never turns an object PUT into a pool PUT', async (t) => {
  const { node } = await httpNode(t);
  const u = node.url;
  for (const path of ['/v1/objects/%2e%2e/pools/zz', '/v1/objects/../pools/zz', '/v1/objects/.%2E/pools/zz', '/v1/objects/x/../../pools/zz']) {
    const r = await asIs(u, 'PUT', path, '{"type":"volatile"}');
    t.equal(r.status, 400, `${path}: 400`);
    t.equal(r.code, 'bad_key', `${path}: bad_key`);
    t.match(r.message, path, `${path}: the message names the path as sent`);
  }
  t.equal((await raw(u, 'GET', '/v1/pools/zz')).status, 404, 'no pool /zz was created');
  t.same((await raw(u, 'GET', '/v1/pools')).json.pools, [], 'no pool at all');
  const metrics = await (await fetch(u + '/metrics')).text();
  t.match(metrics, /squall_http_requests_total\{method="PUT",route="objects",status="400"\} 4/, 'answered on the objects route the client used');
});

t.test('dot segments in an object key are refused, not resolved to another key', async (t) => {
  const { node } = await httpNode(t);
  const u = node.url;
  t.equal((await raw(u, 'PUT', '/v1/pools/p', '{"type":"persistent"}')).status, 201);
  t.equal((await raw(u, 'PUT', '/v1/pools/x', '{"type":"persistent"}')).status, 201);
  const cases: Array<[string, string]> = [
    ['PUT', '/v1/objects/p/../x/k'],
    ['PUT', '/v1/objects/p/%2E/k2'],
    ['PUT', '/v1/objects/p/%2e/k2'],
    ['PUT', '/v1/objects/p/./k2'],
    ['PUT', '/v1/objects/p/k2/.'],
    ['PUT', '/v1/objects/p/k2/%2E%2e'],
    ['GET', '/v1/objects/p/../x/k'],
    ['HEAD', '/v1/objects/p/%2e/k2'],
    ['DELETE', '/v1/objects/p/%2E%2E/x/k'],
    ['GET', '/v1/objects/p/../x/k?history'],
  ];
  for (const [method, path] of cases) {
    const r = await asIs(u, method, path, method === 'PUT' ? 'v' : undefined);
    t.equal(r.status, 400, `${method} ${path}: 400`);
    if (method !== 'HEAD') t.equal(r.code, 'bad_key', `${method} ${path}: bad_key`);
  }
  t.equal((await raw(u, 'GET', '/v1/objects/x/k')).json.error?.code, 'not_found', '/x/k was not written');
  t.equal((await raw(u, 'GET', '/v1/objects/p/k2')).json.error?.code, 'not_found', '/p/k2 was not written');
  // the absolute request-target form is read the same way
  const absolute = await asIs(u, 'PUT', `${u}/v1/objects/p/../x/k`, 'v');
  t.equal(absolute.code, 'bad_key', 'absolute form: bad_key');
  t.equal((await raw(u, 'GET', '/v1/objects/x/k')).json.error?.code, 'not_found', 'still not written');
});

t.test('dot segments in pool paths are refused on the pool routes', async (t) => {
  const { node } = await httpNode(t);
  const u = node.url;
  t.equal((await raw(u, 'PUT', '/v1/pools/a', '{"type":"persistent"}')).status, 201);
  for (const [method, path] of [
    ['PUT', '/v1/pools/a/../b'],
    ['PUT', '/v1/pools/%2e%2e/b'],
    ['DELETE', '/v1/pools/b/../a'],
    ['DELETE', '/v1/pools/a/.'],
    ['GET', '/v1/pools/a/%2E/keys'],
  ] as const) {
    const r = await asIs(u, method, path, method === 'PUT' ? '{"type":"persistent"}' : undefined);
    t.equal(r.status, 400, `${method} ${path}: 400`);
    t.equal(r.code, 'bad_key', `${method} ${path}: bad_key`);
  }
  t.equal((await raw(u, 'GET', '/v1/pools/b')).status, 404, 'no pool /b');
  t.equal((await raw(u, 'GET', '/v1/pools/a')).json.deleted, false, '/a is not deleted');
});

t.test('dots that are not whole segments stay part of the key', async (t) => {
  const { node } = await httpNode(t);
  const u = node.url;
  await raw(u, 'PUT', '/v1/pools/p', '{"type":"persistent"}');
  for (const key of ['/p/a.b', '/p/..c', '/p/.../d', '/p/.hidden/e.', '/p/%2e%2e%2e']) {
    const path = `/v1/objects${key}`;
    t.equal((await asIs(u, 'PUT', path, key)).status, 200, `PUT ${key}`);
    const got = await raw(u, 'GET', path);
    t.equal(got.status, 200, `GET ${key}`);
    t.equal(got.json.text, key, `${key} reads back`);
  }
  const escaped = await raw(u, 'GET', '/v1/objects/p/%252e%252e');
  t.equal(escaped.json.error?.code, 'not_found', 'an escaped %2e is a literal, not a dot');
});
