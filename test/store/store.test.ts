import t, { type Test } from 'tap';
import { isSquallError, SquallError } from '../../src/api/errors.js';
import { openTestStore, removeDir, type TestStore } from '../fixtures/store.js';

const text = (v: Uint8Array): string => Buffer.from(v).toString('utf8');

async function withStore(t: Test, fn: (ts: TestStore) => Promise<void>, options: Parameters<typeof openTestStore>[0] = {}): Promise<void> {
  let ts = await openTestStore(options);
  t.teardown(async () => {
    await ts.close();
    removeDir(ts.dir);
  });
  await fn(ts);
  void ts;
}

async function rejectsWith(t: Test, p: Promise<unknown>, code: string, details?: Record<string, unknown>): Promise<SquallError | undefined> {
  try {
    await p;
    t.fail(`expected ${code}, got success`);
    return undefined;
  } catch (e) {
    t.ok(isSquallError(e), `a SquallError (${(e as Error).message})`);
    t.equal((e as SquallError).code, code, `code ${code}`);
    if (details) t.match((e as SquallError).details, details);
    return e as SquallError;
  }
}

t.test('versions strictly increase and timestamps never decrease, across keys, shards and a backwards clock', async (t) => {
  await withStore(t, async ({ store, clock }) => {
    await store.createPool('/p', { type: 'persistent' });
    const seen = new Map<number, { version: number; ts: number }>();
    for (let i = 0; i < 60; i++) {
      if (i === 30) clock.now -= 5_000_000; // the wall clock steps back 5 s
      else clock.now += 7;
      const r = await store.put(`/p/k${i % 7}`, Buffer.from(`v${i}`));
      const prev = seen.get(r.shard);
      if (prev) {
        t.ok(r.version > prev.version, `version increases on shard ${r.shard}`);
        t.ok(r.timestamp_us >= prev.ts, `timestamp does not decrease on shard ${r.shard}`);
      }
      seen.set(r.shard, { version: r.version, ts: r.timestamp_us });
    }
    t.equal(seen.size, 2, 'both shards were written');
  });
});

t.test('put answers with version, timestamp, previous versions, shard and durability', async (t) => {
  await withStore(t, async ({ store, clock }) => {
    await store.createPool('/p', { type: 'persistent' });
    clock.now += 10;
    const a = await store.put('/p/a', Buffer.from('1'));
    t.equal(a.previous_version_by_key, null);
    t.equal(a.durability, 'persisted');
    t.equal(a.timestamp_us, clock.now);
    const b = await store.put('/p/a', Buffer.from('2'), { durability: 'delivered' });
    t.equal(b.previous_version_by_key, a.version);
    t.equal(b.previous_version, a.version, 'previous write in the shard');
    t.equal(b.durability, 'delivered');
    const empty = await store.put('/p/a', Buffer.alloc(0));
    const got = await store.get('/p/a');
    t.equal(got.value.byteLength, 0, 'an empty value is a value, not a delete');
    t.equal(got.version, empty.version);
  });
});

t.test('compare-and-put accepts the current version and refuses a stale one with no side effect', async (t) => {
  await withStore(t, async ({ store }) => {
    await store.createPool('/p', { type: 'persistent' });
    const v1 = await store.put('/p/a', Buffer.from('one'));
    const v2 = await store.put('/p/a', Buffer.from('two'), { ifMatch: v1.version });
    t.ok(v2.version > v1.version);
    await rejectsWith(t, store.put('/p/a', Buffer.from('stale'), { ifMatch: v1.version }), 'version_mismatch', { current_version: v2.version });
    const after = await store.get('/p/a');
    t.equal(text(after.value), 'two', 'value unchanged');
    t.equal(after.version, v2.version, 'version unchanged');
    t.equal((await store.history('/p/a')).versions.length, 2, 'no version added by the refused write');
    await rejectsWith(t, store.put('/p/a', Buffer.from('x'), { ifNoneMatch: true }), 'version_mismatch', { current_version: v2.version });
    const created = await store.put('/p/new', Buffer.from('n'), { ifNoneMatch: true });
    t.ok(created.version >= 0, 'If-None-Match: * creates an absent key');
    await rejectsWith(t, store.put('/p/missing', Buffer.from('x'), { ifMatch: 5 }), 'version_mismatch', { current_version: null });
    await store.delete('/p/new');
    const again = await store.put('/p/new', Buffer.from('n2'), { ifNoneMatch: true });
    t.ok(again.version > created.version, 'If-None-Match: * accepts a deleted key');
    await rejectsWith(t, store.delete('/p/a', { ifMatch: v1.version }), 'version_mismatch');
    t.equal(text((await store.get('/p/a')).value), 'two', 'refused conditional delete changed nothing');
  });
});

t.test('deletes are tombstones that keep history; deleting a missing or deleted key is a 404', async (t) => {
  await withStore(t, async ({ store, clock }) => {
    await store.createPool('/p', { type: 'persistent' });
    clock.now += 100;
    const v1 = await store.put('/p/a', Buffer.from('alive'));
    clock.now += 100;
    const del = await store.delete('/p/a');
    t.equal(del.previous_version_by_key, v1.version);
    await rejectsWith(t, store.get('/p/a'), 'deleted', { version: del.version });
    await rejectsWith(t, store.delete('/p/a'), 'deleted');
    await rejectsWith(t, store.delete('/p/never'), 'not_found');
    const h = await store.history('/p/a');
    t.same(h.versions.map((v) => [v.version, v.deleted]), [[v1.version, false], [del.version, true]]);
    t.equal(text((await store.get('/p/a', { version: v1.version })).value), 'alive', 'old version still readable');
    clock.now += 1_000_000;
    t.equal(text((await store.get('/p/a', { atUs: v1.timestamp_us })).value), 'alive', 'readable by time before the delete');
    await rejectsWith(t, store.get('/p/a', { atUs: del.timestamp_us }), 'deleted');
  });
});

t.test('reads by version and by time at exact boundaries', async (t) => {
  await withStore(t, async ({ store, clock }) => {
    await store.createPool('/p', { type: 'persistent' });
    clock.now = 2_000_000_000_000_000;
    const a = await store.put('/p/k', Buffer.from('A'));
    clock.now += 1000;
    const other = await store.put('/p/other', Buffer.from('O'));
    clock.now += 1000;
    const b = await store.put('/p/k', Buffer.from('B'));
    clock.now += 1000;
    const d = await store.delete('/p/k');
    clock.now += 1000;
    const c = await store.put('/p/k', Buffer.from('C'));
    clock.now += 10_000_000; // everything is well below the stability frontier now

    // by time
    await rejectsWith(t, store.get('/p/k', { atUs: a.timestamp_us - 1 }), 'not_found');
    t.equal(text((await store.get('/p/k', { atUs: a.timestamp_us })).value), 'A', 't equal to a version timestamp');
    t.equal(text((await store.get('/p/k', { atUs: a.timestamp_us + 1 })).value), 'A', 't just after');
    t.equal(text((await store.get('/p/k', { atUs: other.timestamp_us })).value), 'A', 't at another key write');
    t.equal(text((await store.get('/p/k', { atUs: b.timestamp_us - 1 })).value), 'A', 't between two versions');
    t.equal(text((await store.get('/p/k', { atUs: b.timestamp_us })).value), 'B');
    await rejectsWith(t, store.get('/p/k', { atUs: d.timestamp_us }), 'deleted', { version: d.version });
    await rejectsWith(t, store.get('/p/k', { atUs: c.timestamp_us - 1 }), 'deleted');
    t.equal(text((await store.get('/p/k', { atUs: c.timestamp_us })).value), 'C');
    const atB = await store.get('/p/k', { atUs: b.timestamp_us + 1 });
    t.equal(atB.version, b.version);
    t.equal(atB.timestampUs, b.timestamp_us);

    // by version (versions of one key live on one shard)
    t.equal(text((await store.get('/p/k', { version: a.version })).value), 'A');
    t.equal(text((await store.get('/p/k', { version: b.version - 1 })).value), 'A', 'between two versions');
    t.equal(text((await store.get('/p/k', { version: b.version })).value), 'B');
    await rejectsWith(t, store.get('/p/k', { version: d.version }), 'deleted');
    if (a.version > 0) await rejectsWith(t, store.get('/p/k', { version: a.version - 1 }), 'not_found');
    t.equal(text((await store.get('/p/k', { stable: true })).value), 'C', 'stable read of a persisted write');
  });
});

t.test('reads at a time not yet stable wait, then answer 425', async (t) => {
  await withStore(t, async ({ store, clock }) => {
    await store.createPool('/p', { type: 'persistent' });
    const a = await store.put('/p/k', Buffer.from('A'));
    await rejectsWith(t, store.get('/p/k', { atUs: clock.now + 1_000_000, waitMs: 30 }), 'not_yet_stable');
    const pending = store.get('/p/k', { atUs: a.timestamp_us + 50, waitMs: 5000 });
    setTimeout(() => (clock.now += 100), 30); // time passes: the frontier moves past t
    t.equal(text((await pending).value), 'A', 'answered once the frontier passed');
    await rejectsWith(t, store.get('/p/k', { waitMs: store.limits.readWaitMsMax + 1, atUs: 0 }), 'bad_parameter');
  });
});

t.test('a version read on an idle shard above its last version is answered (the stream skips ahead)', async (t) => {
  await withStore(t, async ({ store }) => {
    await store.createPool('/p', { type: 'persistent' });
    const a = await store.put('/p/k', Buffer.from('A'));
    const r = await store.get('/p/k', { version: a.version + 1000, waitMs: 1000 });
    t.equal(text(r.value), 'A');
    const b = await store.put('/p/k', Buffer.from('B'));
    t.ok(b.version > a.version + 1000, 'later writes get versions above the one read');
  });
});

t.test('a version read far ahead of the last version waits and answers 425; it uses up no sequence space', async (t) => {
  await withStore(t, async ({ store }) => {
    await store.createPool('/p', { type: 'persistent' });
    const a = await store.put('/p/k', Buffer.from('A'));
    const farAhead = Math.floor(a.version / 2 ** 32) * 2 ** 32 + (2 ** 32 - 1);
    await rejectsWith(t, store.get('/p/k', { version: farAhead, waitMs: 50 }), 'not_yet_stable');
    const b = await store.put('/p/k', Buffer.from('B'));
    t.equal(b.version, a.version + 1, 'the next write takes the next version');
    t.equal(text((await store.get('/p/k')).value), 'B');
  });
});

t.test('count retention trims old versions; reads below the trim point answer 410', async (t) => {
  await withStore(t, async ({ store, clock }) => {
    await store.createPool('/r', { type: 'persistent', retain: { versions: 3 } });
    const writes = [];
    for (let i = 0; i < 8; i++) {
      clock.now += 1000;
      writes.push(await store.put('/r/k', Buffer.from(`v${i}`)));
    }
    clock.now += 10_000_000;
    const h = await store.history('/r/k');
    t.same(h.versions.map((v) => v.version), writes.slice(5).map((w) => w.version), 'the newest 3 versions are kept');
    t.equal(text((await store.get('/r/k', { version: writes[5]!.version })).value), 'v5');
    await rejectsWith(t, store.get('/r/k', { version: writes[4]!.version }), 'trimmed', { retained_version: writes[5]!.version });
    await rejectsWith(t, store.get('/r/k', { version: writes[0]!.version }), 'trimmed');
    await rejectsWith(t, store.get('/r/k', { atUs: writes[2]!.timestamp_us }), 'trimmed');
    t.equal(text((await store.get('/r/k', { atUs: writes[6]!.timestamp_us })).value), 'v6');
    await rejectsWith(t, store.get('/r/k', { atUs: writes[0]!.timestamp_us - 1 }), 'not_found', {}); // before the key ever existed
  });
});

t.test('age retention trims versions older than the one current at now - seconds', async (t) => {
  await withStore(t, async ({ store, clock }) => {
    await store.createPool('/age', { type: 'persistent', retain: { seconds: 10 } });
    const base = clock.now;
    const w1 = await store.put('/age/k', Buffer.from('1'));
    clock.now = base + 5_000_000;
    const w2 = await store.put('/age/k', Buffer.from('2'));
    clock.now = base + 8_000_000;
    const w3 = await store.put('/age/k', Buffer.from('3'));
    clock.now = base + 17_000_000; // cut = base + 7 s: w2 is current at the cut, w1 goes
    const deadline = Date.now() + 5000;
    while ((await store.history('/age/k')).versions.length > 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    t.same((await store.history('/age/k')).versions.map((v) => v.version), [w2.version, w3.version]);
    await rejectsWith(t, store.get('/age/k', { atUs: w1.timestamp_us }), 'trimmed');
    t.equal(text((await store.get('/age/k', { atUs: base + 7_000_000 })).value), '2', 'the value at the cut stays readable');
  });
});

t.test('list keys: current, at a past time, at a version, paging with a pinned cut', async (t) => {
  await withStore(t, async ({ store, clock }) => {
    await store.createPool('/l', { type: 'persistent' });
    const t0 = clock.now;
    for (let i = 0; i < 10; i++) {
      clock.now += 100;
      await store.put(`/l/k${i}`, Buffer.from(`a${i}`));
    }
    const tMid = clock.now;
    clock.now += 100;
    await store.delete('/l/k3');
    await store.put('/l/k0', Buffer.from('changed'));
    await store.put('/l/new', Buffer.from('n'));
    clock.now += 5_000_000;

    const current = await store.listKeys('/l');
    t.same(current.keys.map((k) => k.key), ['/l/k0', '/l/k1', '/l/k2', '/l/k4', '/l/k5', '/l/k6', '/l/k7', '/l/k8', '/l/k9', '/l/new']);
    const past = await store.listKeys('/l', { atUs: tMid, values: true });
    t.same(past.keys.map((k) => k.key), Array.from({ length: 10 }, (_, i) => `/l/k${i}`), 'as of tMid: k3 alive, new absent');
    t.equal(Buffer.from(past.keys[0]!.value!, 'base64').toString(), 'a0', 'values as of tMid');
    const before = await store.listKeys('/l', { atUs: t0 });
    t.same(before.keys, [], 'nothing before the first write');

    // paging: 3 at a time, pinned at the first page's cut even as writes continue
    const seen: string[] = [];
    let page = await store.listKeys('/l', { limit: 3 });
    seen.push(...page.keys.map((k) => k.key));
    await store.put('/l/k00', Buffer.from('late')); // after the cut: must not appear
    while (page.next) {
      page = await store.listKeys('/l', { limit: 3, cursor: page.next });
      seen.push(...page.keys.map((k) => k.key));
    }
    t.same(seen, current.keys.map((k) => k.key), 'pages form the same cut');
    const prefixed = await store.listKeys('/l', { prefix: 'k1' });
    t.same(prefixed.keys.map((k) => k.key), ['/l/k1']);
    await rejectsWith(t, store.listKeys('/l', { prefix: '/other/' }), 'bad_parameter');
    await rejectsWith(t, store.listKeys('/l', { cursor: 'garbage' }), 'bad_parameter');
    await rejectsWith(t, store.listKeys('/nope'), 'pool_not_found');
  });
});

t.test('pools: nesting conflicts, identical re-create, deleted pools stay readable and refuse writes', async (t) => {
  await withStore(t, async ({ store }) => {
    const a = await store.createPool('/a', { type: 'persistent' });
    t.ok(a.created);
    t.notOk((await store.createPool('/a', { type: 'persistent' })).created, 'identical re-create is a no-op');
    await rejectsWith(t, store.createPool('/a', { type: 'volatile' }), 'pool_conflict');
    await rejectsWith(t, store.createPool('/a/b', { type: 'persistent' }), 'pool_conflict', { conflict: '/a' });
    await store.createPool('/x/y', { type: 'persistent' });
    await rejectsWith(t, store.createPool('/x', { type: 'persistent' }), 'pool_conflict');
    t.ok((await store.createPool('/ab', { type: 'persistent' })).created, '/ab does not nest with /a');
    await rejectsWith(t, store.createPool('/bad', { type: 'persistent', subgroup: 9 }), 'bad_parameter');
    await rejectsWith(t, store.createPool('bad', { type: 'persistent' }), 'bad_key');
    await store.put('/a/k', Buffer.from('kept'));
    await store.deletePool('/a');
    t.equal(text((await store.get('/a/k')).value), 'kept', 'objects of a deleted pool stay readable');
    await rejectsWith(t, store.put('/a/k', Buffer.from('no')), 'pool_not_found');
    await rejectsWith(t, store.deletePool('/a'), 'pool_not_found');
    await rejectsWith(t, store.put('/zzz/k', Buffer.from('no')), 'pool_not_found');
    await rejectsWith(t, store.put('/a', Buffer.from('no')), 'bad_key');
  });
});

t.test('a request id makes a retried write apply once and answer the first result', async (t) => {
  await withStore(t, async ({ store }) => {
    await store.createPool('/p', { type: 'persistent' });
    const first = await store.put('/p/a', Buffer.from('1'), { requestId: 'req-1' });
    const retry = await store.put('/p/a', Buffer.from('1'), { requestId: 'req-1' });
    t.same(retry, first, 'same answer');
    t.equal((await store.history('/p/a')).versions.length, 1, 'applied once');
    const [c1, c2] = await Promise.all([
      store.put('/p/b', Buffer.from('x'), { requestId: 'req-2' }),
      store.put('/p/b', Buffer.from('x'), { requestId: 'req-2' }),
    ]);
    t.same(c1, c2, 'concurrent duplicates get one result');
    t.equal((await store.history('/p/b')).versions.length, 1);
    await store.put('/p/c', Buffer.from('0'));
    const refused = store.put('/p/c', Buffer.from('x'), { requestId: 'req-3', ifMatch: 999_999 });
    await rejectsWith(t, refused, 'version_mismatch');
    await rejectsWith(t, store.put('/p/c', Buffer.from('x'), { requestId: 'req-3', ifMatch: 999_999 }), 'version_mismatch');
  });
});

t.test('a request id reused for another key or kind of write is refused, not answered with the first result', async (t) => {
  await withStore(t, async ({ store }) => {
    await store.createPool('/p', { type: 'persistent', affinity: '^/p/' });
    await store.put('/p/r1', Buffer.from('first'), { requestId: 'req-1' });
    await rejectsWith(t, store.put('/p/r3', Buffer.from('other'), { requestId: 'req-1' }), 'bad_parameter', { request_id: 'req-1', first_key: '/p/r1' });
    await rejectsWith(t, store.get('/p/r3'), 'not_found');
    await rejectsWith(t, store.delete('/p/r1', { requestId: 'req-1' }), 'bad_parameter');
    t.equal(text((await store.get('/p/r1')).value), 'first', 'the first write stands alone');
    t.equal((await store.history('/p/r1')).versions.length, 1);
  });
});

t.test('a pool whose affinity nests quantifiers is refused (a crafted key could stall the member)', async (t) => {
  await withStore(t, async ({ store }) => {
    await rejectsWith(t, store.createPool('/rx', { type: 'persistent', affinity: '^/rx/(a+)+$' }), 'bad_parameter', { field: 'affinity' });
    t.equal(store.pools.get('/rx'), undefined);
    const { pool } = await store.createPool('/ok', { type: 'persistent', affinity: '^/ok/([^/]+)/' });
    t.equal(pool.affinity, '^/ok/([^/]+)/');
  });
});

t.test('a retried pool delete (same request id) answers the deleted pool; another delete is pool_not_found', async (t) => {
  await withStore(t, async ({ store }) => {
    await store.createPool('/gone', { type: 'persistent' });
    const first = await store.deletePool('/gone', { requestId: 'del-1' });
    t.equal(first.deleted, true);
    const retry = await store.deletePool('/gone', { requestId: 'del-1' });
    t.equal(retry.deleted, true);
    t.equal(retry.version, first.version, 'the same delete, not a second one');
    await rejectsWith(t, store.deletePool('/gone', { requestId: 'del-2' }), 'pool_not_found');
    await rejectsWith(t, store.deletePool('/gone'), 'pool_not_found');
    await rejectsWith(t, store.deletePool('/gone', { requestId: '' }), 'bad_parameter');
  });
});

t.test('a delete refuses If-None-Match (it applies to puts)', async (t) => {
  await withStore(t, async ({ store }) => {
    await store.createPool('/p', { type: 'persistent' });
    await store.put('/p/o1', Buffer.from('x'));
    await rejectsWith(t, store.delete('/p/o1', { ifNoneMatch: true }), 'bad_parameter');
    t.equal(text((await store.get('/p/o1')).value), 'x', 'still there');
  });
});

t.test('restart: state, versions and timestamps come back from LMDB alone; request ids survive', async (t) => {
  let ts = await openTestStore();
  t.teardown(async () => {
    await ts.close();
    removeDir(ts.dir);
  });
  await ts.store.createPool('/p', { type: 'persistent', retain: { versions: 2 } });
  await ts.store.createPool('/v', { type: 'volatile' });
  const written = [];
  for (let i = 0; i < 20; i++) {
    ts.clock.now += 50;
    written.push(await ts.store.put(`/p/k${i % 4}`, Buffer.from(`value-${i}`), { requestId: `r${i}` }));
  }
  await ts.store.put('/v/temp', Buffer.from('gone after restart'));
  ts = await ts.reopen();
  const { store } = ts;
  t.equal(store.pools.list().length, 2, 'pools reloaded');
  for (const w of written.slice(-4)) {
    const r = await store.get(w.key);
    t.equal(r.version, w.version);
    t.equal(r.timestampUs, w.timestamp_us);
  }
  await rejectsWith(t, store.get('/v/temp'), 'not_found');
  const retried = await store.put(written[19]!.key, Buffer.from('value-19'), { requestId: 'r19' });
  t.same(retried, written[19], 'a retry after restart answers the first result');
  ts.clock.now -= 1_000_000; // even if the clock went back across the restart
  const after = await store.put(written[19]!.key, Buffer.from('after'));
  t.ok(after.version > written[19]!.version, 'versions keep increasing across the restart (new view)');
  t.ok(after.timestamp_us >= written[19]!.timestamp_us, 'timestamps keep not decreasing');
  await rejectsWith(t, store.get('/p/k0', { version: written[0]!.version }), 'trimmed');
});

t.test('count retention under a burst of concurrent writes keeps exactly the newest n', async (t) => {
  await withStore(t, async ({ store }) => {
    await store.createPool('/burst', { type: 'persistent', retain: { versions: 3 } });
    const writes = await Promise.all(Array.from({ length: 200 }, (_, i) => store.put('/burst/k', Buffer.from(`v${i}`), { durability: 'delivered' })));
    await store.put('/burst/k', Buffer.from('last')); // persisted: everything before it is durable too
    const h = await store.history('/burst/k');
    const newest = [...writes.map((w) => w.version)].sort((a, b) => a - b).slice(-2);
    t.equal(h.versions.length, 3, 'three versions kept');
    t.same(h.versions.slice(0, 2).map((v) => v.version), newest, 'the newest ones');
    await rejectsWith(t, store.get('/burst/k', { version: newest[0]! - 1 }), 'trimmed');
  });
});

t.test('a large count retention reads only the oldest versions per write', async (t) => {
  await withStore(t, async ({ store }) => {
    await store.createPool('/big', { type: 'persistent', retain: { versions: 1000 } });
    const first = [];
    for (let i = 0; i < 1010; i++) first.push((await store.put('/big/k', Buffer.from(String(i)), { durability: i % 100 === 99 ? 'persisted' : 'delivered' })).version);
    await store.put('/big/k', Buffer.from('x'));
    const all: number[] = [];
    let from: number | undefined;
    for (;;) {
      const page = await store.history('/big/k', { limit: 500, ...(from !== undefined ? { from } : {}) });
      all.push(...page.versions.map((v) => v.version));
      if (!page.next) break;
      from = Number(page.next);
    }
    t.equal(all.length, 1000);
    t.equal(all[0], first[11], 'the oldest kept is the 1000th newest');
  });
});

t.test('the newest-version cache: keys in it, evicted from it, or with it off give the same answers', async (t) => {
  for (const latestCacheKeysMax of [0, 2, 100]) {
    await t.test(`latestCacheKeysMax ${latestCacheKeysMax}`, async (t) => {
      await withStore(
        t,
        async ({ store }) => {
          await store.createPool('/c', { type: 'persistent' });
          await store.createPool('/c1', { type: 'persistent', retain: { versions: 1 } });
          const last = new Map<string, number>();
          const keys = ['/c/a', '/c/b', '/c/c', '/c/d', '/c/e', '/c1/x', '/c1/y'];
          // rounds far apart enough that each round's writes are durable before the next (the cache fills at durability)
          for (let round = 0; round < 6; round++) {
            for (let i = 0; i < keys.length; i++) {
              const key = keys[(i * (round + 1)) % keys.length]!;
              const before = last.get(key);
              const w = await store.put(key, Buffer.from(`${key}@${round}`), before === undefined ? { ifNoneMatch: true } : { ifMatch: before });
              t.equal(w.previous_version_by_key, before ?? null, `${key} round ${round}: previous version by key`);
              last.set(key, w.version);
            }
          }
          for (const [key, version] of last) {
            const got = await store.get(key);
            t.equal(got.version, version, `${key}: current version`);
            await rejectsWith(t, store.put(key, Buffer.from('stale'), { ifMatch: version - 1 }), 'version_mismatch', { current_version: version });
          }
          const d = await store.delete('/c/a', { ifMatch: last.get('/c/a')! });
          await rejectsWith(t, store.get('/c/a'), 'deleted');
          const again = await store.put('/c/a', Buffer.from('back'), { ifNoneMatch: true });
          t.equal(again.previous_version_by_key, d.version, 'a put after a delete sees the tombstone as previous');
          t.equal((await store.history('/c1/x')).versions.length, 1, 'count retention kept only the newest version');
        },
        { limits: { latestCacheKeysMax } },
      );
    });
  }
});

t.test('durableAt: when a version became durable here, null before it is', async (t) => {
  await withStore(t, async ({ store }) => {
    await store.createPool('/d', { type: 'persistent' });
    const before = performance.now();
    const w = await store.put('/d/k', Buffer.from('x'));
    const shard = store.allShards.find((s) => s.name === store.route('/d/k', false).shard.name)!;
    const at = shard.durableAt(w.version);
    t.ok(at !== null && at >= before && at <= performance.now(), 'a persisted write has a durable time within the call');
    t.equal(shard.durableAt(w.version + 1_000_000), null, 'a version not delivered yet has none');
    const w2 = await store.put('/d/k', Buffer.from('y'));
    t.ok(shard.durableAt(w2.version)! >= at!, 'later versions became durable later');
  });
});
