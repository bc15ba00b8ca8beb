import t from 'tap';
import { httpNode, raw } from '../fixtures/http-node.js';

/** A known path with a method it does not take is 405 method_not_allowed with Allow; an unknown path is 404. */

function allowOf(headers: Record<string, string | string[] | undefined>): string[] {
  const allow = headers.allow;
  return typeof allow === 'string' ? allow.split(',').map((m) => m.trim()) : [];
}

t.test('a wrong method on a known path: 405 method_not_allowed with the methods the path takes', async (t) => {
  const { node } = await httpNode(t);
  const u = node.url;
  await raw(u, 'PUT', '/v1/pools/p', '{"type":"persistent"}');
  const cases: Array<[string, string, string[]]> = [
    ['POST', '/v1/objects/p/k', ['GET', 'HEAD', 'PUT', 'DELETE']],
    ['PATCH', '/v1/objects/p/k', ['GET', 'HEAD', 'PUT', 'DELETE']],
    ['PATCH', '/v1/pools/p', ['GET', 'HEAD', 'PUT', 'DELETE']],
    ['POST', '/v1/pools/p/keys', ['GET', 'HEAD', 'PUT', 'DELETE']],
    ['DELETE', '/v1/pools', ['GET', 'HEAD']],
    ['PUT', '/v1/pools', ['GET', 'HEAD']],
    ['GET', '/v1/batch', ['POST']],
    ['PUT', '/v1/batch', ['POST']],
    ['POST', '/v1/watch', ['GET', 'HEAD']],
    ['DELETE', '/v1/cluster', ['GET', 'HEAD']],
    ['POST', '/healthz', ['GET', 'HEAD']],
    ['OPTIONS', '/v1/pools', ['GET', 'HEAD']],
  ];
  for (const [method, path, allow] of cases) {
    const r = await raw(u, method, path, method === 'GET' ? undefined : '{}');
    t.equal(r.status, 405, `${method} ${path}: 405`);
    t.equal(r.json.error?.code, 'method_not_allowed', `${method} ${path}: method_not_allowed`);
    t.type(r.json.error?.message, 'string', `${method} ${path}: has a message`);
    t.same(allowOf(r.headers), allow, `${method} ${path}: Allow: ${allow.join(', ')}`);
    t.same((r.json.error as Record<string, unknown> | undefined)?.allow, allow, `${method} ${path}: allow in the error`);
    t.equal(r.headers['squall-error-code'], 'method_not_allowed');
  }
  const head = await raw(u, 'HEAD', '/v1/batch');
  t.equal(head.status, 405, 'HEAD /v1/batch: 405');
  t.same(allowOf(head.headers), ['POST'], 'HEAD /v1/batch: Allow: POST');
  t.equal((await raw(u, 'GET', '/v1/pools/p')).status, 200, 'the allowed methods still work');
  t.equal((await raw(u, 'GET', '/v1/pools')).status, 200);
});

t.test('unknown paths stay 404 route_not_found, whatever the method', async (t) => {
  const { node } = await httpNode(t);
  const u = node.url;
  for (const [method, path] of [
    ['GET', '/v2/objects/p/k'],
    ['POST', '/v2/objects/p/k'],
    ['DELETE', '/nowhere'],
    ['GET', '/v1/batches'],
    ['PATCH', '/v1/poolsx'],
  ] as const) {
    const r = await raw(u, method, path, method === 'GET' ? undefined : '{}');
    t.equal(r.status, 404, `${method} ${path}: 404`);
    t.equal(r.json.error?.code, 'route_not_found', `${method} ${path}: route_not_found`);
    t.equal(r.headers.allow, undefined, `${method} ${path}: no Allow`);
  }
});
