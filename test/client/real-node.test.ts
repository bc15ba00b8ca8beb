/**
 * The client against the real node (src/node) in this process: the parts of the contract the fake cannot
 * vouch for — the node's own page cursors, event ids and resume, batch bodies, errors of HEAD.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { SquallClient, type ListOptions, type RetryInfo, type WatchChange } from '../../src/client/index.js';
import type { Router } from '../../src/client/router.js';
import { startNode } from '../../src/node/index.js';

const dir = mkdtempSync(join(tmpdir(), 'squall-client-'));
const node = await startNode({ dataDir: join(dir, 'data'), port: 0, host: '127.0.0.1' });
const client = new SquallClient({ url: node.url, retryDelayMs: 1 });
t.teardown(async () => {
  await client.close();
  await node.close();
  rmSync(dir, { recursive: true, force: true });
});
await client.createPool('/p', { type: 'persistent' });

t.test('history and keys follow the node page cursors to the end', async (t) => {
  const versions = [];
  for (let i = 0; i < 7; i++) versions.push((await client.put('/p/h', `v${i}`)).version);
  const first = await client.history('/p/h', { limit: 3 });
  t.same(first.versions.map((v) => v.version), versions.slice(0, 3));
  t.not(first.next, null);
  const all = [];
  for await (const e of client.historyAll('/p/h', { limit: 3 })) all.push(e.version);
  t.same(all, versions);
  const ranged = [];
  for await (const e of client.historyAll('/p/h', { from: versions[2]!, to: versions[5]!, limit: 2 })) ranged.push(e.version);
  t.same(ranged, versions.slice(2, 6));

  for (let i = 0; i < 5; i++) await client.put(`/p/list/k${i}`, `x${i}`);
  const keys = [];
  for await (const k of client.listAll('/p', { prefix: '/p/list/', limit: 2, values: true })) keys.push([k.key, Buffer.from(k.value!, 'base64').toString()]);
  t.same(keys, [0, 1, 2, 3, 4].map((i) => [`/p/list/k${i}`, `x${i}`]));
});

t.test('reads by version and time, HEAD errors by header, deletes', async (t) => {
  const w1 = await client.put('/p/r', 'one');
  const w2 = await client.put('/p/r', 'two');
  t.equal((await client.get('/p/r', { version: w1.version })).value.toString(), 'one');
  t.equal((await client.get('/p/r', { at: w2.timestamp_us - 1 })).value.toString(), 'one');
  t.equal((await client.get('/p/r', { at: new Date(Math.floor(w2.timestamp_us / 1000) + 1) })).value.toString(), 'two');
  const h = await client.head('/p/r');
  t.match(h, { version: w2.version, sizeBytes: 3, previousVersionByKey: w1.version });
  const d = await client.delete('/p/r');
  await t.rejects(client.get('/p/r'), { code: 'deleted', details: { version: d.version } });
  await t.rejects(client.head('/p/r'), { code: 'deleted', details: { version: d.version } });
  await t.rejects(client.head('/p/never'), { code: 'not_found' });
  await t.rejects(client.head('/nopool/k'), { code: 'pool_not_found' });
  await t.rejects(client.put('/p/r', 'x', { ifMatch: w1.version }), { code: 'version_mismatch', status: 412 });
});

t.test('batch in both encodings', async (t) => {
  for (const encoding of ['msgpack', 'json'] as const) {
    const r = await client.batch(
      [
        { op: 'put', key: `/p/b-${encoding}`, value: Buffer.from([0, 1, 255]) },
        { op: 'get', key: `/p/b-${encoding}` },
        { op: 'get', key: '/p/b-missing' },
      ],
      { encoding },
    );
    t.equal(r[0]!.status, 200, encoding);
    t.same([...r[1]!.value!], [0, 1, 255], `${encoding}: value back as bytes`);
    t.match(r[2], { status: 404, error: { code: 'not_found' } });
  }
});

t.test('watch: the node ids resume a watch where it left off', async (t) => {
  const w1 = await client.put('/p/w/a', '1');
  await client.put('/p/w/b', '2');
  const w3 = await client.put('/p/w/c', '3');
  const take = async (it: AsyncGenerator<WatchChange>, n: number) => {
    const out: WatchChange[] = [];
    for await (const c of it) if (out.push(c) >= n) break;
    return out;
  };
  const firstTwo = await take(client.watch('/p/w/', { fromVersion: w1.version }), 2);
  t.same(firstTwo.map((c) => c.key), ['/p/w/a', '/p/w/b']);
  const rest = await take(client.watch('/p/w/', { lastEventId: firstTwo[1]!.id }), 1);
  t.same(rest.map((c) => [c.key, c.version]), [['/p/w/c', w3.version]], 'resumed after the id given');
});

/**
 * Lists `prefix` of /p page by page (2 keys a page) with `cut`, and between the first page and the rest writes
 * what would change the listing if a later page were not of the first page's cut: a key that sorts among the
 * remaining ones, an overwrite and a delete of keys still to come, a key after the last.
 */
async function listWhileWriting(prefix: string, cut: Pick<ListOptions, 'at' | 'version'>): Promise<string[][]> {
  const out: string[][] = [];
  for await (const k of client.listAll('/p', { prefix, limit: 2, values: true, ...cut })) {
    out.push([k.key, Buffer.from(k.value!, 'base64').toString()]);
    if (out.length === 2) {
      await client.put(`${prefix}k1a`, 'new');
      await client.put(`${prefix}k4`, 'new');
      await client.delete(`${prefix}k5`);
      await client.put(`${prefix}k9`, 'new');
    }
  }
  return out;
}

/** Writes k0..k7 under `prefix` (value 'old'); their write results. */
async function writeOld(prefix: string): Promise<{ key: string; version: number; shard: number; timestamp_us: number }[]> {
  const written = [];
  for (let i = 0; i < 8; i++) written.push(await client.put(`${prefix}k${i}`, 'old'));
  return written;
}

t.test('listAll as of a time or a version is one cut over every page: later pages send the cursor alone', async (t) => {
  const old = (keys: readonly string[]): string[][] => keys.map((k) => [k, 'old']);

  const us = await writeOld('/p/cut-us/');
  const atUs = Math.max(...us.map((w) => w.timestamp_us));
  t.same(await listWhileWriting('/p/cut-us/', { at: atUs }), old(us.map((w) => w.key)), 'at in µs: 4 pages, none shows a later write');

  const date = await writeOld('/p/cut-date/');
  const atMs = Math.ceil(Math.max(...date.map((w) => w.timestamp_us)) / 1000);
  while (Date.now() <= atMs + 1) await new Promise((r) => setTimeout(r, 1)); // later writes are after the cut
  t.same(await listWhileWriting('/p/cut-date/', { at: new Date(atMs) }), old(date.map((w) => w.key)), 'at as a Date');

  // Versions count per shard: at V = the lower of the two shards' newest versions, every later write (on
  // either shard) is above V, and the initial keys in the cut are those at or below it.
  const ver = await writeOld('/p/cut-ver/');
  const newestByShard = new Map<number, number>();
  for (const w of ver) newestByShard.set(w.shard, Math.max(newestByShard.get(w.shard) ?? -1, w.version));
  const v = Math.min(...newestByShard.values());
  const inCut = ver.filter((w) => w.version <= v).map((w) => w.key);
  t.ok(inCut.length > 2, `the cut at version ${v} spans pages: ${inCut.length} keys`);
  t.same(await listWhileWriting('/p/cut-ver/', { version: v }), old(inCut), 'at a version');

  // Right now the later writes are there: the cut above was the first page's, not the server's current state.
  const now = [];
  for await (const k of client.listAll('/p', { prefix: '/p/cut-us/', limit: 2 })) now.push(k.key);
  t.same(now, ['k0', 'k1', 'k1a', 'k2', 'k3', 'k4', 'k6', 'k7', 'k9'].map((k) => `/p/cut-us/${k}`));

  // One page at a time: the cursor carries the cut; at or version next to it is refused unsent.
  const first = await client.list('/p', { prefix: '/p/cut-us/', limit: 2, at: atUs });
  t.not(first.next, null);
  const second = await client.list('/p', { prefix: '/p/cut-us/', limit: 2, cursor: first.next!, stable: true });
  t.same(second.keys.map((k) => k.key), ['/p/cut-us/k2', '/p/cut-us/k3'], 'the page after k1 in the cut at atUs: no k1a');
  await t.rejects(client.list('/p', { cursor: first.next!, at: atUs }), { code: 'bad_parameter', details: { parameter: 'cursor' } });
});

t.test('a read at a time not yet stable waits waitMs past headersTimeoutMs: 425 not_yet_stable, the node not suspect', async (t) => {
  const retries: RetryInfo[] = [];
  const slow = new SquallClient({ url: node.url, headersTimeoutMs: 1000, retryDelayMs: 1, onRetry: (r) => retries.push(r) });
  t.teardown(() => slow.close());
  await slow.put('/p/later', 'v');
  const router = (slow as unknown as { router: Router }).router;
  const future = Date.now() * 1000 + 60_000_000;
  const startedMs = performance.now();
  await t.rejects(slow.get('/p/later', { at: future, waitMs: 1500 }), { name: 'SquallError', code: 'not_yet_stable', status: 425 });
  const tookMs = performance.now() - startedMs;
  t.ok(tookMs >= 1400, `the server waited its waitMs (${Math.round(tookMs)} ms)`);
  await t.rejects(slow.head('/p/later', { at: new Date(future / 1000), waitMs: 1200 }), { code: 'not_yet_stable' });
  t.same(retries, [], 'no attempt failed: nothing was retried');
  t.equal(router.seeds[0]!.suspectUntilMs, 0, 'the node is not suspect');
  t.equal((await slow.get('/p/later')).value.toString(), 'v');
});
