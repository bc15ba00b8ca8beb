import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { WatchChange } from '../../src/client/index.js';
import { withPool } from '../fixtures/setup.js';

/** Waits (bounded: 2000 turns of 5 ms) until `cond` holds; false if it never did. */
async function until(cond: () => boolean): Promise<boolean> {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  return cond();
}

/** `p`, or 'timeout' after `ms` (a pending next() that never settles must fail the test, not hang it). */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Takes `n` changes from a watch, or fails after `timeoutMs` (a stuck watch must not hang the suite). */
async function take(it: AsyncGenerator<WatchChange, void, undefined>, n: number, timeoutMs = 10_000): Promise<WatchChange[]> {
  const out: WatchChange[] = [];
  const timer = setTimeout(() => void it.return(undefined), timeoutMs);
  try {
    for await (const c of it) {
      out.push(c);
      if (out.length >= n) break;
    }
  } finally {
    clearTimeout(timer);
  }
  return out;
}

t.test('watch from a version: past changes in order, then live ones', async (t) => {
  const { client, fake } = await withPool(t);
  const w1 = await client.put('/p/a', 'x');
  const d = await client.delete('/p/a');
  const it = client.watch('/p/', { fromVersion: w1.version });
  const first = await take(it, 2);
  t.same(first.map((c) => [c.key, c.version, c.op]), [['/p/a', w1.version, 'put'], ['/p/a', d.version, 'delete']]);
  t.equal(first[0]!.id, `0:${w1.version}`);
  t.equal(first[0]!.shard, 0, 'the shard comes from the event id');
  t.equal(first[0]!.timestamp_us, w1.timestamp_us);
  t.match(fake.watchConnections[0]!.url, new RegExp(`from_version=${w1.version}`));

  const live = client.watch('/p/');
  const got = take(live, 1);
  // The watch connects; write once it is there (bounded wait: 400 turns of 5 ms).
  for (let i = 0; i < 400 && fake.watchConnections.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
  const w2 = await client.put('/p/b', 'live');
  t.same((await got).map((c) => [c.key, c.version]), [['/p/b', w2.version]]);
});

t.test('a dropped stream resumes with Last-Event-ID: nothing lost, nothing repeated', async (t) => {
  const { client, fake } = await withPool(t, {}, { watchDropAfter: 2 });
  const versions: number[] = [];
  for (let i = 0; i < 7; i++) versions.push((await client.put(`/p/k${i}`, String(i))).version);
  const changes = await take(client.watch('/p/', { fromVersion: versions[0]! }), 7);
  t.same(changes.map((c) => c.version), versions, 'every change once, in order');
  t.equal(fake.watchConnections.length, 4, '7 events at 2 per connection');
  t.equal(fake.watchConnections[0]!.lastEventId, undefined);
  t.match(fake.watchConnections[0]!.url, /from_version=/);
  for (let i = 1; i < 4; i++) {
    t.equal(fake.watchConnections[i]!.lastEventId, `0:${versions[2 * i - 1]}`, `reconnection ${i} resumes after the last event seen`);
    t.notMatch(fake.watchConnections[i]!.url, /from_version=/, 'the event id, not the start version, says where to resume');
  }
});

t.test('a watch may start from an event id given by the caller', async (t) => {
  const { client, fake } = await withPool(t);
  const v = [];
  for (let i = 0; i < 3; i++) v.push((await client.put('/p/k', String(i))).version);
  const changes = await take(client.watch('/p/', { lastEventId: `0:${v[0]}` }), 2);
  t.same(changes.map((c) => c.version), v.slice(1));
  t.equal(fake.watchConnections[0]!.lastEventId, `0:${v[0]}`);
});

t.test('reconnections are bounded: a node that keeps failing ends the watch with unavailable', async (t) => {
  const { client, fake } = await withPool(t, { watchReconnectsMax: 3 });
  fake.fault({ kind: 'reset', match: /^\/v1\/watch/, times: 1000 });
  const err = await take(client.watch('/p/'), 1).catch((e: unknown) => e);
  t.match(err, { code: 'unavailable', details: { attempts: 4, prefix: '/p/' } });
  t.equal(fake.requestsTo('GET', '/v1/watch').length, 4, 'first try + 3 reconnections');
});

t.test('a watch that never opened gives up like a request (retryAttemptsMax); one that opened is patient (watchReconnectsMax)', async (t) => {
  const options = { retryAttemptsMax: 2, retryDelayMs: 1, watchReconnectsMax: 4, watchReconnectDelayMs: 1 };
  const first = await withPool(t, options);
  first.fake.fault({ kind: 'reset', match: /^\/v1\/watch/, times: 1000 });
  const never = await take(first.client.watch('/p/'), 1).catch((e: unknown) => e);
  t.match(never, { code: 'unavailable', message: /could not be opened/, details: { attempts: 2, prefix: '/p/' } });
  t.equal(first.fake.requestsTo('GET', '/v1/watch').length, 2, 'first try + 1 retry, as a request');

  const { client, fake } = await withPool(t, options, { watchDropAfter: 1 });
  const w = await client.put('/p/k', 'v');
  const it = client.watch('/p/', { fromVersion: w.version });
  t.equal((await it.next()).value?.version, w.version, 'the stream opened (and is cut after this event)');
  fake.fault({ kind: 'reset', match: /^\/v1\/watch/, times: 1000 });
  const lost = await within(it.next(), 10_000).catch((e: unknown) => e);
  t.match(lost, { code: 'unavailable', message: /lost its stream/, details: { attempts: 5 } });
  t.equal(fake.requestsTo('GET', '/v1/watch').length, 1 + 4, 'after the stream opened: 4 reconnections, more than retryAttemptsMax');
});

t.test('a 503 with Retry-After is waited out; another error ends the watch at once', async (t) => {
  const { client, fake } = await withPool(t);
  const w = await client.put('/p/k', 'v');
  fake.fault({ kind: 'answer', match: /^\/v1\/watch/, status: 503, body: JSON.stringify({ error: { code: 'view_change', message: 'x' } }), headers: { 'retry-after': '0' } });
  const changes = await take(client.watch('/p/', { fromVersion: w.version }), 1);
  t.equal(changes[0]!.version, w.version);
  t.equal(fake.requestsTo('GET', '/v1/watch').length, 2);

  fake.fault({ kind: 'answer', match: /^\/v1\/watch/, status: 404, body: JSON.stringify({ error: { code: 'pool_not_found', message: 'no pool' } }) });
  await t.rejects(take(client.watch('/nope/'), 1), { code: 'pool_not_found' });
  t.equal(fake.requestsTo('GET', '/v1/watch').length, 3, 'not retried');
  t.throws(() => client.watch('no-slash'), { code: 'bad_parameter' });
});

t.test('abort and break end the watch without an error and close its connection', async (t) => {
  const { client, fake } = await withPool(t);
  for (let i = 0; i < 5; i++) await client.put('/p/k', String(i));
  const ac = new AbortController();
  const seen: number[] = [];
  for await (const c of client.watch('/p/', { fromVersion: 0, signal: ac.signal })) {
    seen.push(c.version);
    if (seen.length === 2) ac.abort();
  }
  t.equal(seen.length, 2, 'no change after the abort');

  const it = client.watch('/p/', { fromVersion: 0 });
  t.equal((await take(it, 3)).length, 3);
  const live = (fake as unknown as { watchers: Set<unknown> }).watchers;
  for (let i = 0; i < 400 && live.size > 0; i++) await new Promise((r) => setTimeout(r, 5));
  t.equal(live.size, 0, 'the server saw both streams close');
});

t.test('an error event of a 503 kind (watcher fell behind) resumes; another error event ends the watch', async (t) => {
  const { client, fake } = await withPool(t, {}, { watchDropAfter: 3, watchCutWith: 'error-event' });
  const versions: number[] = [];
  for (let i = 0; i < 7; i++) versions.push((await client.put(`/p/k${i}`, String(i))).version);
  const changes = await take(client.watch('/p/', { fromVersion: versions[0]! }), 7);
  t.same(changes.map((c) => c.version), versions, 'every change once, in order');
  t.equal(fake.watchConnections.length, 3);
  t.equal(fake.watchConnections[1]!.lastEventId, `0:${versions[2]}`);

  const sse = `id: 0:1\ndata: ${JSON.stringify({ key: '/p/x', version: 1, timestamp_us: 5, op: 'put', size: 1 })}\n\n` +
    `event: error\ndata: ${JSON.stringify({ error: { code: 'bad_parameter', message: 'no such position' } })}\n\n`;
  fake.fault({ kind: 'answer', match: /^\/v1\/watch/, status: 200, body: sse, headers: { 'content-type': 'text/event-stream' } });
  const seen: number[] = [];
  const err = await (async () => {
    for await (const c of client.watch('/p/')) seen.push(c.version);
  })().catch((e: unknown) => e);
  t.same(seen, [1], 'the event before the error is delivered');
  t.match(err, { code: 'bad_parameter', message: 'no such position' });
});

t.test('the shard of an event comes from its data, or from its id when the data has none', async (t) => {
  const { client, fake } = await withPool(t);
  const sse = `id: persistent/0/3:7\ndata: ${JSON.stringify({ key: '/p/x', version: 7, timestamp_us: 5, op: 'put', size: 1 })}\n\n` +
    `id: persistent/0/3:8\ndata: ${JSON.stringify({ key: '/p/x', version: 8, timestamp_us: 6, op: 'put', size: 1, shard: 5 })}\n\n`;
  fake.fault({ kind: 'answer', match: /^\/v1\/watch/, status: 200, body: sse, headers: { 'content-type': 'text/event-stream' } });
  const changes = await take(client.watch('/p/'), 2);
  t.same(changes.map((c) => [c.id, c.shard]), [['persistent/0/3:7', 3], ['persistent/0/3:8', 5]]);
});

t.test('close() ends every open watch: a pending next() resolves done, the streams are closed', async (t) => {
  const { client, fake } = await withPool(t);
  const live = (fake as unknown as { watchers: Set<unknown> }).watchers;
  const w = await client.put('/p/k', 'v');
  // One watch waits in next(), one is parked after a change (nobody asks for the next).
  const waiting = client.watch('/p/');
  const pending = waiting.next();
  const parked = client.watch('/p/', { fromVersion: w.version });
  t.equal((await parked.next()).value?.version, w.version);
  t.ok(await until(() => live.size === 2), 'both streams are open');

  t.equal(await within(client.close(), 5000), undefined, 'close() returns while watches are open');
  t.same(await within(pending, 5000), { done: true, value: undefined }, 'the pending next() resolves done');
  t.same(await within(parked.next(), 5000), { done: true, value: undefined }, 'the parked watch is done too');
  t.ok(await until(() => live.size === 0), 'the node saw both streams close');
  t.same(await within(client.watch('/p/').next(), 5000), { done: true, value: undefined }, 'a watch after close ends at once');
  t.equal(fake.watchConnections.length, 2, 'and opens no connection');
  t.equal(await within(client.close(), 5000), undefined, 'a second close() resolves too');
});

t.test('close() in a process with an open watch: next() settles and the process exits by itself', async (t) => {
  const { fake } = await withPool(t);
  const live = (fake as unknown as { watchers: Set<unknown> }).watchers;
  const env: NodeJS.ProcessEnv = { ...process.env };
  // The child runs as a program would: not under tap's loaders or coverage.
  delete env.NODE_OPTIONS;
  delete env.NODE_V8_COVERAGE;
  const script = fileURLToPath(new URL('./watch-close-child.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, fake.url], { env, stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
  t.teardown(() => {
    clearTimeout(kill);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  t.equal((await lines.next()).value, 'waiting');
  t.ok(await until(() => live.size === 1), 'the child watch is connected');
  child.stdin!.end('close\n');
  t.equal((await lines.next()).value, JSON.stringify({ done: true }), 'the pending next() resolved done');
  t.equal(await exited, 0, 'the child exited on its own (SIGKILL after 30 s otherwise)');
});
