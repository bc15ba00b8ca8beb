import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import t from 'tap';
import { SquallError } from '../../src/api/index.js';
import { SquallClient, type ClientOptions, type RetryInfo } from '../../src/client/index.js';
import { withPool } from '../fixtures/setup.js';

const ID = 'squall-request-id';

t.test('every write carries a request id, unique per call; the caller may give its own', async (t) => {
  const { client, fake } = await withPool(t);
  await client.put('/p/a', '1');
  await client.put('/p/a', '2');
  await client.delete('/p/a');
  await client.batch([{ op: 'put', key: '/p/b', value: 'x' }]);
  await client.createPool('/q', { type: 'volatile' });
  await client.deletePool('/q');
  const writes = fake.requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD');
  const ids = writes.map((r) => r.headers[ID]);
  t.equal(writes.length, 7, 'pool /p + six writes');
  t.ok(ids.every((id) => typeof id === 'string' && id.length >= 16), 'each has an id');
  t.equal(new Set(ids).size, ids.length, 'all different');

  await client.put('/p/c', 'v', { requestId: 'my-own-id' });
  t.equal(fake.requests.at(-1)!.headers[ID], 'my-own-id');
  await client.delete('/p/c', { requestId: 'my-delete-id' });
  t.equal(fake.requests.at(-1)!.headers[ID], 'my-delete-id');
  t.notOk(fake.requestsTo('GET', '/').some((r) => r.headers[ID] !== undefined), 'reads carry none');

  const other = new SquallClient(fake.url);
  t.teardown(() => other.close());
  t.not(other.newRequestId().split('-')[0], client.newRequestId().split('-')[0], 'two clients draw different prefixes');
});

t.test('a connection reset before the answer is retried with the same id, and applied once', async (t) => {
  const retries: RetryInfo[] = [];
  const { client, fake } = await withPool(t, { onRetry: (r) => retries.push(r) });
  fake.fault({ kind: 'reset', method: 'PUT', match: /^\/v1\/objects\//, times: 2 });
  const w = await client.put('/p/k', 'v');
  const puts = fake.requestsTo('PUT', '/v1/objects/p/k');
  t.equal(puts.length, 3, 'two resets, then the answer');
  t.equal(new Set(puts.map((r) => r.headers[ID])).size, 1, 'one id across the attempts');
  t.same(retries.map((r) => [r.method, r.path, r.attempt, r.origin, r.error.code]), [
    ['PUT', '/v1/objects/p/k', 1, fake.url, 'unavailable'],
    ['PUT', '/v1/objects/p/k', 2, fake.url, 'unavailable'],
  ], 'onRetry was told of each retry');
  t.ok(retries.every((r) => r.requestId === puts[0]!.headers[ID]), 'with the request id');
  t.equal(fake.objects.get('/p/k')!.length, 1);
  t.equal(fake.objects.get('/p/k')![0]!.version, w.version);
});

t.test('an answer lost after the write was applied: the retry returns the first result', async (t) => {
  const { client, fake } = await withPool(t);
  fake.fault({ kind: 'reset-after', method: 'PUT', match: /^\/v1\/objects\// });
  const w = await client.put('/p/k', 'v');
  const puts = fake.requestsTo('PUT', '/v1/objects/p/k');
  t.equal(puts.length, 2);
  t.equal(puts[0]!.headers[ID], puts[1]!.headers[ID]);
  t.equal(fake.objects.get('/p/k')!.length, 1, 'one version, not two');
  t.equal(w.version, fake.objects.get('/p/k')![0]!.version, 'the retry got the first write result');

  fake.fault({ kind: 'reset-after', method: 'DELETE' });
  const d = await client.delete('/p/k');
  t.equal(fake.requestsTo('DELETE', '/v1/objects/p/k').length, 2);
  t.equal(fake.objects.get('/p/k')!.at(-1)!.version, d.version, 'a retried delete is no 404');

  fake.fault({ kind: 'reset-after', method: 'POST' });
  const results = await client.batch([{ op: 'put', key: '/p/b', value: 'x' }]);
  t.equal(results[0]!.status, 200);
  t.equal(fake.objects.get('/p/b')!.length, 1, 'a retried batch is applied once');
});

t.test('503 with Retry-After is retried with the same id until it succeeds', async (t) => {
  const { client, fake } = await withPool(t);
  const body = JSON.stringify({ error: { code: 'view_change', message: 'view change in progress' } });
  fake.fault({ kind: 'answer', method: 'PUT', status: 503, body, headers: { 'retry-after': '0' }, times: 2 });
  await client.put('/p/k', 'v');
  const puts = fake.requestsTo('PUT', '/v1/objects/p/k');
  t.equal(puts.length, 3);
  t.equal(new Set(puts.map((r) => r.headers[ID])).size, 1);
  fake.fault({ kind: 'answer', method: 'GET', status: 503, body, headers: { 'retry-after': '0' } });
  t.equal((await client.get('/p/k')).value.toString(), 'v', 'reads are retried too');
});

t.test('retries are bounded by attempts', async (t) => {
  const { client, fake } = await withPool(t, { retryAttemptsMax: 4 });
  const body = JSON.stringify({ error: { code: 'no_quorum', message: 'no majority', members: 1 } });
  fake.fault({ kind: 'answer', method: 'PUT', status: 503, body, headers: { 'retry-after': '0' }, times: 100 });
  const err = (await client.put('/p/k', 'v').catch((e: unknown) => e)) as SquallError;
  t.ok(err instanceof SquallError);
  t.match(err, { code: 'no_quorum', status: 503, retryAfterS: 0, details: { members: 1 } });
  t.equal(fake.requestsTo('PUT', '/v1/objects/p/k').length, 4, 'exactly retryAttemptsMax attempts');

  fake.fault({ kind: 'reset', method: 'GET', times: 100 });
  const net = (await client.get('/p/k').catch((e: unknown) => e)) as SquallError;
  t.match(net, { code: 'unavailable', details: { attempts: 4, cause_code: 'UND_ERR_SOCKET' } });
  t.match(net.message, /cannot reach Squall at http:\/\/127\.0\.0\.1:\d+/);
  t.equal(fake.requestsTo('GET', '/v1/objects/p/k').length, 4);
});

t.test('retries are bounded by time: a Retry-After past the budget is not waited for', async (t) => {
  const { client, fake } = await withPool(t, { retryTimeoutMs: 1000 });
  const body = JSON.stringify({ error: { code: 'view_change', message: 'later' } });
  fake.fault({ kind: 'answer', method: 'PUT', status: 503, body, headers: { 'retry-after': '5' } });
  const err = (await client.put('/p/k', 'v').catch((e: unknown) => e)) as SquallError;
  t.match(err, { code: 'view_change', retryAfterS: 5 });
  t.equal(fake.requestsTo('PUT', '/v1/objects/p/k').length, 1);

  const { client: c0, fake: f0 } = await withPool(t, { retryTimeoutMs: 0 });
  f0.fault({ kind: 'reset', method: 'PUT', times: 10 });
  await t.rejects(c0.put('/p/k', 'v'), { code: 'unavailable', details: { attempts: 1 } });
  t.equal(f0.requestsTo('PUT', '/v1/objects/p/k').length, 1, 'no time left: no retry');
});

t.test('a 503 without Retry-After and other errors are not retried', async (t) => {
  const { client, fake } = await withPool(t);
  fake.fault({ kind: 'answer', method: 'PUT', status: 503, body: JSON.stringify({ error: { code: 'no_quorum', message: 'x' } }) });
  await t.rejects(client.put('/p/k', 'v'), { code: 'no_quorum' });
  t.equal(fake.requestsTo('PUT', '/v1/objects/p/k').length, 1);
  await t.rejects(client.put('/p/k', 'v', { ifMatch: 5 }), { code: 'version_mismatch' });
  t.equal(fake.requestsTo('PUT', '/v1/objects/p/k').length, 2);
});

t.test('a node that is not there: unavailable after bounded attempts, with the cause', async (t) => {
  // A port that was free a moment ago: nothing listens there.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const client = new SquallClient({ url: `http://127.0.0.1:${port}`, retryAttemptsMax: 3, retryDelayMs: 1, retryDelayMsMax: 2 });
  t.teardown(() => client.close());
  const err = (await client.put('/p/k', 'v').catch((e: unknown) => e)) as SquallError;
  t.ok(err instanceof SquallError);
  t.match(err, { code: 'unavailable', status: 503, details: { cause_code: 'ECONNREFUSED', attempts: 3 } });
  t.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}: ECONNREFUSED`));
  t.ok(err.cause, 'the network error is kept as the cause');
  await t.rejects(client.health(), { code: 'unavailable', details: { attempts: 1 } }, 'probes try once');
});

t.test('an abort signal stops a call and its retries', async (t) => {
  const { client, fake } = await withPool(t, { retryDelayMs: 200, retryDelayMsMax: 200 });
  fake.fault({ kind: 'reset', method: 'PUT', times: 100 });
  const ac = new AbortController();
  const p = client.put('/p/k', 'v', { signal: ac.signal });
  // Abort once the first attempt has reached the server (bounded wait: 200 turns of 5 ms).
  for (let i = 0; i < 200 && fake.requestsTo('PUT', '/v1/objects/p/k').length === 0; i++) await new Promise((r) => setTimeout(r, 5));
  ac.abort();
  const err = (await p.catch((e: unknown) => e)) as Error;
  t.equal(err.name, 'AbortError');
  t.ok(fake.requestsTo('PUT', '/v1/objects/p/k').length < 5, 'not all attempts were made');
});

t.test('body size limit: oversized values fail with too_large before sending', async (t) => {
  const { client, fake } = await withPool(t, { bodySizeBytesMax: 16 });
  const before = fake.requests.length;
  await t.rejects(client.put('/p/k', Buffer.alloc(17)), { code: 'too_large', status: 413, details: { size_bytes: 17, limit_bytes: 16 } });
  await t.rejects(client.put('/p/k', '€€€€€€'), { code: 'too_large', details: { size_bytes: 18 } }, 'UTF-8 bytes count, not characters');
  await t.rejects(client.batch([{ op: 'put', key: '/p/k', value: Buffer.alloc(17) }]), { code: 'too_large' });
  await t.rejects(client.batch([{ op: 'put', key: '/p/a', value: 'x' }, { op: 'put', key: '/p/b', value: 'y' }]), { code: 'too_large' }, 'the encoded batch counts');
  t.equal(fake.requests.length, before, 'nothing was sent');
  await client.put('/p/k', Buffer.alloc(16));
  await client.put('/p/k', '€€€€€');
  t.equal(fake.objects.get('/p/k')!.length, 2, 'at the limit is fine');
});

t.test('the server checks its own limit before the body: 413 too_large surfaces', async (t) => {
  const { client } = await withPool(t, {}, { bodySizeBytesMax: 100 });
  await t.rejects(client.put('/p/k', Buffer.alloc(101)), { code: 'too_large', status: 413 });
});

t.test('client options are checked when the client is made', async (t) => {
  t.throws(() => new SquallClient('not a url'), { code: 'bad_parameter' });
  t.throws(() => new SquallClient('ftp://127.0.0.1:1'), { code: 'bad_parameter' });
  t.throws(() => new SquallClient('http://127.0.0.1:1/v1'), { code: 'bad_parameter' });
  t.throws(() => new SquallClient({ url: 'http://127.0.0.1:1', retryAttemptsMax: 0 }), { code: 'bad_parameter', details: { option: 'retryAttemptsMax' } });
  t.throws(() => new SquallClient({ url: 'http://127.0.0.1:1', connections: 1.5 }), { code: 'bad_parameter' });
  t.throws(() => new SquallClient({ url: 'http://127.0.0.1:1', retryDelayMs: 100, retryDelayMsMax: 10 }), { code: 'bad_parameter' });
  // Unknown names, a non-boolean where a boolean goes, URLs with more than an origin are refused, not ignored.
  const bad = (options: unknown, option: string, what: string): void => {
    t.throws(() => new SquallClient(options as ClientOptions), { name: 'SquallError', code: 'bad_parameter', details: { option } }, what);
  };
  bad({ url: 'http://127.0.0.1:1', timeoutMs: 5 }, 'timeoutMs', 'an unknown option');
  bad({ url: 'http://127.0.0.1:1', headersTimeout: 5 }, 'headersTimeout', 'a misspelt option');
  bad({ url: 'http://127.0.0.1:1', validateKeys: 'no' }, 'validateKeys', "validateKeys: 'no'");
  bad({ url: 'http://127.0.0.1:1', validateKeys: 0 }, 'validateKeys', 'validateKeys: 0');
  bad({ url: 'http://127.0.0.1:1', routing: 'false' }, 'routing', "routing: 'false'");
  bad({ url: 'http://user:pw@127.0.0.1:8080' }, 'url', 'credentials in the url');
  bad({ url: 'http://user@127.0.0.1:8080' }, 'url', 'a user name in the url');
  bad({ url: 'http://@127.0.0.1:8080' }, 'url', 'an empty user part');
  bad({ urls: ['http://127.0.0.1:1', 'http://u:p@127.0.0.1:2'] }, 'urls', 'credentials in a seed');
  bad({ url: 'http://127.0.0.1:8080#frag' }, 'url', 'a fragment');
  bad({ url: 'http://127.0.0.1:8080/#' }, 'url', 'an empty fragment');
  bad({ url: 'http://127.0.0.1:8080?' }, 'url', 'an empty query');
  bad(null, 'url', 'no options object');
  const secret = (() => {
    try {
      new SquallClient('http://user:s3cret@127.0.0.1:8080');
    } catch (e) {
      return (e as Error).message;
    }
    return '';
  })();
  t.notMatch(secret, /s3cret/, 'the refusal does not repeat the password');
  const off = new SquallClient({ url: 'http://127.0.0.1:1/', validateKeys: false, timeoutMs: undefined } as ClientOptions);
  t.equal(off.options.validateKeys, false, 'a boolean is taken; an unknown name left undefined is no option at all');
  await off.close();
  const c = new SquallClient({ url: 'http://127.0.0.1:1', connections: undefined });
  t.equal(c.options.connections, 16, 'undefined means the default');
  t.equal(c.options.bodySizeBytesMax, 64 * 1024 * 1024);
  await c.close();
});

t.test('with the default options, a write rides out a node that is down for a few seconds (a restart)', async (t) => {
  const answer = (req: IncomingMessage, res: ServerResponse): void => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ key: '/p/k', version: 7, timestamp_us: 1, previous_version: null, previous_version_by_key: null, shard: 0, durability: 'persisted' }));
    });
  };
  // a port that is free now; the node comes up on it 3 s after the write starts
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const node = createHttpServer(answer);
  const up = setTimeout(() => node.listen(port, '127.0.0.1'), 3000);
  t.teardown(() => {
    clearTimeout(up);
    node.closeAllConnections();
    node.close();
  });
  const retries: RetryInfo[] = [];
  const client = new SquallClient({ url: `http://127.0.0.1:${port}`, routing: false, onRetry: (r) => retries.push(r) });
  t.teardown(() => client.close());
  const w = await client.put('/p/k', 'v', { requestId: 'restart-1' });
  t.equal(w.version, 7, 'answered once the node is back');
  t.ok(retries.length >= 3, `retried meanwhile (${retries.length} retries)`);
});
