import t from 'tap';
import { operationFor, preload, preloadInFlightBytesMax, preloadRequestBytesMax, preloadShape, tagged, tagOf, withRetries, writeKeys } from '../../bench/workload.js';
import { MemoryTarget, PlainMemoryTarget } from './memory-target.js';

const base = new Uint8Array(64).fill(7);

t.test('preload writes every key once per version, in rounds, and returns each ref', async (t) => {
  const target = new MemoryTarget('m', { batchEntriesMax: 7 });
  const refs = await preload(target, 'h', 20, 3, base);
  t.equal(refs.length, 20);
  t.ok(refs.every((r) => r.length === 3));
  for (let i = 0; i < 20; i++) {
    const versions = target.history.get(`h-k${i}`)!;
    t.same(versions.map((v) => tagOf(v.value)), [0, 1, 2], `key ${i} has rounds 0, 1, 2 in order`);
    t.same(versions.map((v) => v.revision), refs[i], `key ${i} refs are its write revisions`);
  }
  t.equal(target.revision, 3 * Math.ceil(20 / 7), 'batched by the target limit');
});

t.test('preload from a first key adds keys without rewriting earlier ones', async (t) => {
  const target = new MemoryTarget();
  await preload(target, 'k', 10, 1, base);
  const refs = await preload(target, 'k', 25, 1, base, 10);
  t.equal(refs.length, 15);
  t.equal(target.history.size, 25);
  t.ok([...target.history.values()].every((v) => v.length === 1));
});

t.test('preload works with single puts when the target has no batches', async (t) => {
  const target = new PlainMemoryTarget();
  const refs = await preload(target, 'g', 5, 1, base);
  t.equal(refs.length, 5);
  t.same(await target.get('g-k4'), tagged(base, 0), 'the value of round 0');
});

t.test('operations count entries and check what they read', async (t) => {
  const target = new MemoryTarget();
  const refs = await preload(target, 'h', 10, 4, base);
  const getPast = operationFor(target, { op: 'get-past', sizeBytes: 64, batch: 1, concurrency: 1 }, 'h', 10, base, refs);
  for (let i = 0; i < 50; i++) t.equal(await getPast(), 1);

  const batchPut = operationFor(target, { op: 'put', sizeBytes: 64, batch: 5, concurrency: 1 }, 'p', 10, base, null);
  const before = target.revision;
  t.equal(await batchPut(), 5);
  t.equal(target.revision, before + 1, 'one request for the batch');

  const get = operationFor(target, { op: 'get', sizeBytes: 64, batch: 1, concurrency: 1 }, 'h', 10, base, null);
  t.equal(await get(), 1);
  const mixed = operationFor(target, { op: 'mixed', sizeBytes: 64, batch: 1, concurrency: 1 }, 'h', 10, base, null);
  for (let i = 0; i < 50; i++) t.equal(await mixed(), 1);

  const wrongSize = operationFor(target, { op: 'get', sizeBytes: 65, batch: 1, concurrency: 1 }, 'h', 10, base, null);
  await t.rejects(wrongSize(), /read 64 bytes, expected 65/);
  const missing = operationFor(target, { op: 'get', sizeBytes: 64, batch: 1, concurrency: 1 }, 'nothing', 10, base, null);
  await t.rejects(missing(), /not found/);
});

t.test('a target that answers the current value for a past ref is caught', async (t) => {
  const liar = new MemoryTarget('liar', {}, true);
  const refs = await preload(liar, 'h', 3, 5, base);
  const getPast = operationFor(liar, { op: 'get-past', sizeBytes: 64, batch: 1, concurrency: 1 }, 'h', 3, base, refs);
  let caught = 0;
  for (let i = 0; i < 40; i++) await getPast().catch(() => caught++);
  t.ok(caught > 0, `wrong versions detected (${caught} of 40; 1 in 5 reads asks for the latest)`);
});

t.test('a request that fails is tried again, up to the attempts asked, then its error is thrown', async (t) => {
  let calls = 0;
  const retried: number[] = [];
  t.equal(await withRetries(3, 1, async () => (++calls < 3 ? Promise.reject(new Error(`no ${calls}`)) : 'done'), (_e, attempt) => retried.push(attempt)), 'done');
  t.same(retried, [1, 2]);
  calls = 0;
  await t.rejects(withRetries(2, 1, async () => Promise.reject(new Error(`no ${++calls}`))), { message: 'no 2' });
  t.equal(calls, 2);
});

t.test('writeKeys rewrites a batch that failed (a view change answers 503 retry) and reports each request once', async (t) => {
  const target = new MemoryTarget('m');
  const putMany = target.putMany.bind(target);
  let failures = 1;
  target.putMany = async (entries) => (failures-- > 0 ? Promise.reject(new Error('503 view_change')) : putMany(entries));
  const written: [number, number][] = [];
  const retries: string[] = [];
  await writeKeys(target, 'r', 0, 25, base, { batchEntries: 10, concurrency: 1, attempts: 2, onWritten: (first, count) => written.push([first, count]), onRetry: (e) => retries.push((e as Error).message) });
  t.same(written, [[0, 10], [10, 10], [20, 5]]);
  t.same(retries, ['503 view_change']);
  t.equal(target.history.size, 25);
  failures = 2;
  await t.rejects(writeKeys(target, 'r', 0, 10, base, { batchEntries: 10, concurrency: 1, attempts: 2, onWritten: () => {} }), { message: '503 view_change' }, 'not forever');
});

t.test('preload requests stay within the byte bounds per request and in flight', async (t) => {
  const batched = new MemoryTarget();
  const small = preloadShape(batched, 1024);
  t.same(small, { batchEntries: 100, concurrency: 16 }, 'small values: full batches, full concurrency');
  for (const size of [64 * 1024, 1024 * 1024, 8 * 1024 * 1024]) {
    const { batchEntries, concurrency } = preloadShape(batched, size);
    t.ok(batchEntries >= 1 && concurrency >= 1, `${size} B: at least one entry and one request`);
    t.ok(batchEntries === 1 || batchEntries * size <= preloadRequestBytesMax, `${size} B: ${batchEntries} entries per request within the bound`);
    t.ok(concurrency === 1 || concurrency * batchEntries * size <= preloadInFlightBytesMax, `${size} B: ${concurrency} requests in flight within the bound`);
  }
  t.equal(preloadShape(new PlainMemoryTarget(), 1024 * 1024).batchEntries, 1, 'no batches without putMany');
  let inFlight = 0;
  let most = 0;
  let largest = 0;
  const watched = new MemoryTarget();
  const putMany = watched.putMany.bind(watched);
  watched.putMany = async (entries) => {
    largest = Math.max(largest, entries.length);
    most = Math.max(most, ++inFlight);
    await new Promise((r) => setImmediate(r));
    inFlight--;
    return putMany(entries);
  };
  const big = new Uint8Array(1024 * 1024);
  await preload(watched, 'b', 40, 1, big);
  t.ok(largest * big.length <= preloadRequestBytesMax, `at most ${largest} values of 1 MiB per request`);
  t.ok(most * preloadShape(watched, big.length).batchEntries * big.length <= preloadInFlightBytesMax, `at most ${most} requests of 1 MiB values in flight`);
  t.equal(watched.history.size, 40, 'every key written');
});

t.test('a preload request that fails is tried again', async (t) => {
  const target = new MemoryTarget();
  const putMany = target.putMany.bind(target);
  let failures = 2;
  target.putMany = async (entries) => {
    if (failures > 0) {
      failures--;
      throw new Error('request timed out');
    }
    return putMany(entries);
  };
  const refs = await preload(target, 'r', 30, 1, base);
  t.equal(failures, 0, 'both failures happened');
  t.equal(refs.length, 30);
  t.ok(refs.every((r) => typeof r[0] === 'number'), 'every key has a ref');
});
