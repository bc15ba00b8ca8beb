import t, { type Test } from 'tap';
import { isSquallError } from '../../src/api/errors.js';
import type { StoreLimits } from '../../src/store/config.js';
import { stateTransferHooks, type Store } from '../../src/store/index.js';
import type { StateChunk, StateTransferHooks } from '../../src/transport/storage.js';
import { openTestStore, removeDir, type TestStore } from '../fixtures/store.js';

/**
 * The store's state-transfer hooks move a shard between two stores in chunks (the transport drives the
 * same calls between members): whatever the chunk size, and after an interrupted transfer, the receiver
 * answers every read exactly as the donor does.
 */

const POOL = '/p';
const KEYS = 40;

async function withPair(
  t: Test,
  body: (donor: TestStore, receiver: TestStore) => Promise<void>,
  receiverLimits: Partial<StoreLimits> = {},
): Promise<void> {
  const donor = await openTestStore();
  const receiver = await openTestStore({ clock: donor.clock, limits: receiverLimits });
  t.teardown(async () => {
    await donor.close();
    await receiver.close();
    removeDir(donor.dir);
    removeDir(receiver.dir);
  });
  await body(donor, receiver);
}

/** Writes `rounds` versions of every key (values of several sizes, request ids on some), moving the clock. */
async function write(ts: TestStore, rounds: number, tag: string): Promise<void> {
  for (let r = 0; r < rounds; r++) {
    const round: Array<Promise<unknown>> = [];
    for (let k = 0; k < KEYS; k++) {
      ts.clock.now += 100;
      const value = Buffer.alloc(50 + ((k * 37 + r * 11) % 900), `${tag}${r}:${k}|`);
      round.push(ts.store.put(`${POOL}/k${k}`, value, k % 3 === 0 ? { requestId: `${tag}-${r}-${k}` } : {}));
    }
    await Promise.all(round);
  }
  await ts.store.delete(`${POOL}/k1`);
  ts.clock.now += 1_000_000; // every write is below the stability frontier: reads "at" them answer at once
}

interface Moved {
  chunks: number;
}

/**
 * Moves what `kind` asks for of every object shard (and, for a state, the pool registry), chunk by
 * chunk; `stopAfter` abandons each shard's transfer after that many chunks (an interrupted transfer).
 */
async function move(
  from: Store,
  to: Store,
  kind: 'state' | 'tail',
  chunkBytes: number,
  stopAfter = Infinity,
  afterVersions: Map<string, number> = new Map(),
  toVersions: Map<string, number> = new Map(),
): Promise<Moved> {
  const donor = stateTransferHooks(from);
  const receiver = stateTransferHooks(to);
  let chunks = 0;
  if (kind === 'state' && stopAfter === Infinity) await moveRegistry(from, to);
  for (const shard of from.allShards) {
    const toVersion = toVersions.get(shard.name) ?? shard.frontiers.deliveredVersion;
    const after = kind === 'state' ? -1 : (afterVersions.get(shard.name) ?? -1);
    if (kind === 'tail' && after < 0) continue; // nothing held of it: that shard would need a state
    let cursor: Uint8Array | null = null;
    for (let i = 0; i < 100_000 && i < stopAfter; i++) {
      const c: StateChunk = kind === 'state' ? await donor.stateAt(shard.name, toVersion, cursor, chunkBytes) : await chunkOf(donor, shard.name, after, toVersion, cursor, chunkBytes);
      chunks++;
      await receiver.install(shard.name, { kind, bytes: c.bytes, fromVersion: after, toVersion, first: cursor === null, last: c.next === null });
      if (c.next === null) break;
      cursor = c.next;
    }
  }
  return { chunks };
}

/** The pool registry (the metadata shard) travels as one chunk. */
async function moveRegistry(from: Store, to: Store): Promise<void> {
  const m = from.metadata;
  const v = m.frontiers.deliveredVersion;
  const c = await stateTransferHooks(from).stateAt(m.name, v, null, 1024);
  await stateTransferHooks(to).install(m.name, { kind: 'state', bytes: c.bytes, fromVersion: -1, toVersion: v, first: true, last: c.next === null });
}

async function chunkOf(donor: StateTransferHooks, name: string, after: number, to: number, cursor: Uint8Array | null, chunkBytes: number): Promise<StateChunk> {
  const c = await donor.logTail(name, after, to, cursor, chunkBytes);
  if (!c) throw new Error(`donor cannot produce a tail of ${name} after ${after}`);
  return c;
}

/** Everything a reader can ask of a key: history, current, each version, at each version's time. */
async function answers(store: Store, key: string): Promise<unknown[]> {
  const out: unknown[] = [];
  const settle = async (p: Promise<{ value: Uint8Array; version: number; timestampUs: number }>) => {
    try {
      const r = await p;
      return { version: r.version, ts: r.timestampUs, value: Buffer.from(r.value).toString('hex') };
    } catch (e) {
      if (isSquallError(e)) return { error: e.code };
      throw e;
    }
  };
  const h = await store.history(key, { limit: 1000 });
  out.push(h.versions);
  out.push(await settle(store.get(key)));
  for (const v of h.versions) {
    out.push(await settle(store.get(key, { version: v.version })));
    out.push(await settle(store.get(key, { atUs: v.timestamp_us })));
    out.push(await settle(store.get(key, { atUs: v.timestamp_us - 1 })));
  }
  return out;
}

async function sameAnswers(t: Test, donor: Store, receiver: Store, what: string): Promise<void> {
  let differing = 0;
  for (let k = 0; k < KEYS; k++) {
    const key = `${POOL}/k${k}`;
    if (JSON.stringify(await answers(donor, key)) !== JSON.stringify(await answers(receiver, key))) differing++;
  }
  t.equal(differing, 0, `${what}: every key reads the same on both`);
}

const shardEnds = (store: Store): Map<string, number> => new Map(store.allShards.map((s) => [s.name, s.frontiers.deliveredVersion]));

for (const chunkBytes of [1024, 16 * 1024, 64 * 1024 * 1024]) {
  t.test(`a whole state moved in chunks of ${chunkBytes} bytes reads the same`, async (t) => {
    await withPair(t, async (donor, receiver) => {
      await donor.store.createPool(POOL, { type: 'persistent', retain: { versions: 3 } });
      await write(donor, 5, 'a');
      const moved = await move(donor.store, receiver.store, 'state', chunkBytes);
      if (chunkBytes === 1024) t.ok(moved.chunks > 50, `many chunks (${moved.chunks})`);
      if (chunkBytes === 64 * 1024 * 1024) t.equal(moved.chunks, donor.store.allShards.length, 'one chunk per shard');
      await sameAnswers(t, donor.store, receiver.store, 'after the state');
      // a retried write with a request id used before the transfer is answered from the moved results
      const again = await receiver.store.put(`${POOL}/k3`, Buffer.from('retry'), { requestId: 'a-4-3' });
      const first = await donor.store.put(`${POOL}/k3`, Buffer.from('retry'), { requestId: 'a-4-3' });
      t.equal(again.version, first.version, 'a retried request id answers with the original version');
    });
  });
}

t.test('a tail moved in chunks extends a copy; an interrupted transfer is replaced by the next', async (t) => {
  await withPair(t, async (donor, receiver) => {
    await donor.store.createPool(POOL, { type: 'persistent', retain: { versions: 4 } });
    await write(donor, 3, 'a');
    await move(donor.store, receiver.store, 'state', 2048);
    const ends = shardEnds(donor.store);
    await write(donor, 3, 'b'); // trims versions the receiver holds
    // a tail abandoned after 2 chunks, then a whole tail from the same point
    await move(donor.store, receiver.store, 'tail', 2048, 2, ends);
    const tail = await move(donor.store, receiver.store, 'tail', 2048, Infinity, ends);
    t.ok(tail.chunks > donor.store.allShards.length, `the tail took several chunks (${tail.chunks})`);
    await sameAnswers(t, donor.store, receiver.store, 'after the tail');
    // a whole state abandoned after 3 chunks (it emptied the copy), then a whole state
    await write(donor, 2, 'c');
    await move(donor.store, receiver.store, 'state', 2048, 3);
    await move(donor.store, receiver.store, 'state', 2048);
    await sameAnswers(t, donor.store, receiver.store, 'after an interrupted state and a whole one');
  });
});

t.test('a tail carries the trims a retention sweep made on keys it does not write', async (t) => {
  await withPair(t, async (donor, receiver) => {
    await donor.store.createPool(POOL, { type: 'persistent', retain: { seconds: 10 } });
    await write(donor, 2, 'a'); // two versions of every key
    await move(donor.store, receiver.store, 'state', 4096);
    const ends = shardEnds(donor.store);
    donor.clock.now += 20_000_000; // both versions are older than 10 s: the sweep keeps the one current at the cut
    for (const shard of donor.store.allShards) {
      const key = Array.from({ length: KEYS }, (_, k) => `${POOL}/k${k}`).find((k) => donor.store.route(k, false).shard.name === shard.name);
      if (key) await donor.store.put(key, Buffer.from('new')); // each shard's tail is not empty
    }
    donor.clock.now += 1_000_000; // the new writes are below the stability frontier
    const swept = async (): Promise<boolean> => (await donor.store.history(`${POOL}/k2`)).versions.length === 1;
    for (let i = 0; i < 200 && !(await swept()); i++) await new Promise((r) => setTimeout(r, 20));
    t.ok(await swept(), 'the sweep trimmed a key nobody wrote since');
    await move(donor.store, receiver.store, 'tail', 4096, Infinity, ends);
    await sameAnswers(t, donor.store, receiver.store, 'after the tail');
  }, { retentionSweepMs: 3_600_000 }); // the receiver runs no sweep of its own: what it trims came with the tail
});

t.test('request results of writes after the version moved stay behind (the receiver applies those writes itself)', async (t) => {
  await withPair(t, async (donor, receiver) => {
    await donor.store.createPool(POOL, { type: 'persistent' });
    await write(donor, 2, 'a');
    const ends = shardEnds(donor.store);
    await write(donor, 1, 'b'); // applied on the donor after the version the transfer is made for
    await move(donor.store, receiver.store, 'state', 2048, Infinity, new Map(), ends);
    const shard = donor.store.route(`${POOL}/k0`, false).shard;
    const later = await donor.store.put(`${POOL}/k0`, Buffer.from('x'), { requestId: 'b-0-0' }); // the original answer
    t.ok(later.version > ends.get(shard.name)!, 'the later write is beyond the range moved');
    const generation = Math.floor(later.timestamp_us / (donor.store.limits.requestIdRetentionMs * 1000));
    const held = (ts: TestStore, id: string): boolean =>
      [generation, generation - 1].some((g) => ts.store.allShards.find((s) => s.name === shard.name)!.log.requestResult(g, id) !== undefined);
    t.ok(held(donor, 'a-1-0') && held(donor, 'b-0-0'), 'the donor holds both results');
    t.ok(held(receiver, 'a-1-0'), 'the receiver holds the result of a write within the range');
    t.notOk(held(receiver, 'b-0-0'), 'but not that of the later write');
  });
});

t.test('the receiver copy is marked incomplete until the last chunk, and survives a restart complete', async (t) => {
  await withPair(t, async (donor, receiver) => {
    await donor.store.createPool(POOL, { type: 'persistent' });
    await write(donor, 2, 'a');
    const shard = donor.store.allShards[0]!;
    const hooks = stateTransferHooks(donor.store);
    const into = stateTransferHooks(receiver.store);
    const v = shard.frontiers.deliveredVersion;
    const c = await hooks.stateAt(shard.name, v, null, 1024);
    t.not(c.next, null, 'more than one chunk');
    await into.install(shard.name, { kind: 'state', bytes: c.bytes, fromVersion: -1, toVersion: v, first: true, last: false });
    const mid = receiver.store.storage.shardEnd(shard.name);
    t.equal(mid?.complete, false, 'incomplete after the first chunk');
    t.equal(mid?.version, -1, 'and holding no delivered prefix yet');
    let cursor = c.next;
    for (let i = 0; cursor !== null && i < 10_000; i++) {
      const n = await hooks.stateAt(shard.name, v, cursor, 1024);
      await into.install(shard.name, { kind: 'state', bytes: n.bytes, fromVersion: -1, toVersion: v, first: false, last: n.next === null });
      cursor = n.next;
    }
    const end = receiver.store.storage.shardEnd(shard.name);
    t.same(end, { version: v, timestampUs: end?.timestampUs, complete: true, awaitingFrom: [] }, 'complete up to the version moved');
    t.ok(end!.timestampUs > 0, 'the end carries the last version time');
    const restarted = await receiver.reopen();
    t.teardown(() => restarted.close());
    t.same(restarted.store.storage.shardEnd(shard.name), end, 'the same after a restart');
    await moveRegistry(donor.store, restarted.store);
    const key = Array.from({ length: KEYS }, (_, k) => `${POOL}/k${k}`).find((k) => donor.store.route(k, false).shard.name === shard.name)!;
    t.same(await answers(restarted.store, key), await answers(donor.store, key), 'and reads the same after a restart');
  });
});

t.test('a cursor that is not one the store made is refused', async (t) => {
  await withPair(t, async (donor) => {
    await donor.store.createPool(POOL, { type: 'persistent' });
    await write(donor, 1, 'a');
    const shard = donor.store.allShards[0]!;
    await t.rejects(stateTransferHooks(donor.store).stateAt(shard.name, shard.frontiers.deliveredVersion, Buffer.from([0x81, 0xa1, 0x70, 0xa1, 0x78]), 1024), /malformed/);
  });
});
