/**
 * The client against the real node (src/node) in this process: the parts of the contract the fake cannot
 * vouch for — the node's own page cursors, event ids and resume, batch bodies, errors of HEAD.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { SquallClient, type WatchChange } from '../../src/client/index.js';
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
