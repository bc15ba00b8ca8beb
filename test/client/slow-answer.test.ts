import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { SquallClient, type RetryInfo } from '../../src/client/index.js';
import type { Router } from '../../src/client/router.js';

/**
 * A node that is slow is not a node that is down. Two seeds: the first takes every request and never answers
 * (a stalled process on an open connection); the second answers. A request that times out waiting for the
 * first is retried on the second (a write with the same request id, since the first may have applied it),
 * and the first is not made suspect for it. A connection refused still is.
 */

interface Seen {
  method: string;
  url: string;
  requestId: string | undefined;
}

/** An HTTP server on a free port: `answer` null holds the request open until the server stops. */
async function server(t: Test, answer: ((req: IncomingMessage, res: ServerResponse) => void) | null): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const s = createServer((req, res) => {
    const id = req.headers['squall-request-id'];
    seen.push({ method: req.method!, url: req.url!, requestId: typeof id === 'string' ? id : undefined });
    req.resume();
    if (answer !== null) req.on('end', () => answer(req, res));
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    s.closeAllConnections();
    return new Promise<void>((r) => s.close(() => r()));
  });
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, seen };
}

function answerOk(req: IncomingMessage, res: ServerResponse): void {
  if (req.method === 'PUT') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ key: '/p/k', version: 7, timestamp_us: 1, previous_version: null, previous_version_by_key: null, shard: 0, durability: 'persisted' }));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'squall-version': '7', 'squall-timestamp-us': '1' });
  res.end('v');
}

t.test('a request whose answer is late is retried on another member; the slow member is not suspect', async (t) => {
  const stalled = await server(t, null);
  const live = await server(t, answerOk);
  const retries: RetryInfo[] = [];
  const client = new SquallClient({ urls: [stalled.url, live.url], routing: false, headersTimeoutMs: 300, retryDelayMs: 1, onRetry: (r) => retries.push(r) });
  t.teardown(() => client.close());
  const [slowSeed] = (client as unknown as { router: Router }).router.seeds;

  t.equal((await client.get('/p/k')).value.toString(), 'v', 'the read is answered by the other member');
  t.match(retries, [{ method: 'GET', origin: stalled.url, error: { code: 'unavailable', details: { cause_code: 'UND_ERR_HEADERS_TIMEOUT' } } }]);
  t.match(retries[0]!.error.message, /no answer in time from Squall at/);
  t.equal(slowSeed!.suspectUntilMs, 0, 'the slow member is not suspect');

  const w = await client.put('/p/k', 'v', { requestId: 'slow-put-1' });
  t.equal(w.version, 7);
  const puts = [...stalled.seen, ...live.seen].filter((r) => r.method === 'PUT');
  t.same(puts.map((r) => r.requestId), ['slow-put-1', 'slow-put-1'], 'the write went to the slow member, then again with the same id');
  t.equal(slowSeed!.suspectUntilMs, 0, 'still not suspect');
  await client.get('/p/k');
  t.equal(stalled.seen.filter((r) => r.method === 'GET').length, 2, 'so the next read goes to it first again');
});

t.test('a member that refuses connections is still suspect', async (t) => {
  const live = await server(t, answerOk);
  // A port nothing listens on any more.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
  const deadUrl = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
  await new Promise<void>((r) => probe.close(() => r()));
  const client = new SquallClient({ urls: [deadUrl, live.url], routing: false, retryDelayMs: 1 });
  t.teardown(() => client.close());
  const [deadSeed] = (client as unknown as { router: Router }).router.seeds;
  t.equal((await client.get('/p/k')).value.toString(), 'v');
  t.ok(deadSeed!.suspectUntilMs > performance.now(), 'the member that refused is suspect');
});

t.test('with the default options, a write stuck on a stalled member is retried elsewhere (headers timeout < retry window)', async (t) => {
  const stalled = await server(t, null);
  const live = await server(t, answerOk);
  const retries: RetryInfo[] = [];
  const client = new SquallClient({ urls: [stalled.url, live.url], routing: false, onRetry: (r) => retries.push(r) });
  t.teardown(() => client.close());
  const w = await client.put('/p/k', 'v', { requestId: 'stalled-default-1' });
  t.equal(w.version, 7, 'answered by the live member');
  t.match(retries, [{ method: 'PUT', origin: stalled.url, error: { details: { cause_code: 'UND_ERR_HEADERS_TIMEOUT' } } }]);
  t.same(live.seen.filter((r) => r.method === 'PUT').map((r) => r.requestId), ['stalled-default-1'], 'with the same request id');
});
