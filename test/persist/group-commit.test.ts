import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import t from 'tap';
import { GroupCommit, StorageError, type StagedDb } from '../../src/persist/group-commit.js';

/**
 * A stand-in for lmdb-js's root: writes land in `written` in call order, each turn's writes form one
 * transaction whose commit and sync the test completes by hand.
 */
class FakeRoot {
  readonly written: Array<[string, unknown]> = [];
  readonly txns: Array<{ writes: number; commit(): void; sync(): void; fail(e: Error): void }> = [];
  #open: { committed: Promise<void>; flushed: Promise<void> } | null = null;
  /** The newest transaction: `committed` and `flushed` follow it until the next one starts, as in lmdb-js. */
  #last: { committed: Promise<void>; flushed: Promise<void> } | null = null;

  db(name: string): StagedDb {
    const write = (key: unknown, value: unknown): void => {
      this.#txn();
      this.written.push([`${name}:${String(key)}`, value]);
      this.txns[this.txns.length - 1]!.writes++;
    };
    return { put: (k: unknown, v: unknown) => write(k, v), remove: (k: unknown) => write(k, 'REMOVED') } as unknown as StagedDb;
  }

  #txn(): void {
    if (this.#open) return;
    let commit!: () => void;
    let sync!: () => void;
    let failCommit!: (e: Error) => void;
    let failSync!: (e: Error) => void;
    const committed = new Promise<void>((r, reject) => ((commit = r), (failCommit = reject)));
    const flushed = new Promise<void>((r, reject) => ((sync = r), (failSync = reject)));
    const open = { committed, flushed };
    this.#open = open;
    this.#last = open;
    // a committed transaction takes no more writes
    const close = (): void => {
      if (this.#open === open) this.#open = null;
    };
    this.txns.push({ writes: 0, commit: () => (close(), commit()), sync, fail: (e) => (close(), failCommit(e), failSync(e)) });
    setImmediate(() => (this.#open = null)); // lmdb-js closes a turn's batch after the turn
  }

  get committed(): Promise<void> {
    return this.#last?.committed ?? Promise.resolve();
  }

  get flushed(): Promise<void> {
    return this.#last?.flushed ?? Promise.resolve();
  }
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

t.test('a waiter resolves only when every transaction up to its writes is synced, in order', async (t) => {
  const root = new FakeRoot();
  const gc = new GroupCommit(root as unknown as RootDatabase, 1000);
  const db = root.db('d');
  const resolved: string[] = [];
  gc.put(db, 'a', 1);
  void gc.durable().then(() => resolved.push('a'));
  await turn();
  t.equal(root.txns.length, 1, 'the first turn\'s writes started a transaction');
  gc.put(db, 'b', 2);
  void gc.durable().then(() => resolved.push('b'));
  await turn();
  t.equal(root.txns.length, 1, 'no second transaction while the first is being written');
  root.txns[0]!.commit();
  await turn();
  await turn();
  t.equal(root.txns.length, 2, 'the next transaction starts once the previous one is committed, before it is synced');
  t.same(root.written.map(([k]) => k), ['d:a', 'd:b'], 'writes reach LMDB in staging order');
  root.txns[1]!.commit();
  root.txns[1]!.sync();
  await turn();
  t.same(resolved, [], 'a later sync does not release waiters of an earlier unsynced transaction');
  root.txns[0]!.sync();
  await turn();
  t.same(resolved, ['a', 'b'], 'both released, in order, once the first is synced too');
});

t.test('committed() resolves at commit, before the sync', async (t) => {
  const root = new FakeRoot();
  const gc = new GroupCommit(root as unknown as RootDatabase, 1000);
  const db = root.db('d');
  let committed = false;
  let durable = false;
  gc.put(db, 'a', 1);
  void gc.committed().then(() => (committed = true));
  void gc.durable().then(() => (durable = true));
  await turn();
  root.txns[0]!.commit();
  await turn();
  t.ok(committed, 'committed');
  t.notOk(durable, 'not durable before the sync');
  root.txns[0]!.sync();
  await turn();
  t.ok(durable, 'durable after the sync');
});

t.test('commitWritesMax splits a large stage into several transactions, all in order', async (t) => {
  const root = new FakeRoot();
  const gc = new GroupCommit(root as unknown as RootDatabase, 3);
  const db = root.db('d');
  for (let i = 0; i < 10; i++) gc.put(db, i, i);
  let done = false;
  void gc.durable().then(() => (done = true));
  for (let round = 0; round < 10 && !done; round++) {
    await turn();
    for (const txn of root.txns) {
      txn.commit();
      txn.sync();
    }
    await turn();
  }
  t.ok(done, 'the waiter resolved');
  t.same(root.txns.map((x) => x.writes), [3, 3, 3, 1], 'at most commitWritesMax writes per transaction');
  t.same(root.written.map(([k]) => k), Array.from({ length: 10 }, (_, i) => `d:${i}`), 'in staging order');
});

t.test('on real LMDB: interleaved puts and removes across turns end as staged, and are durable when waited for', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'squall-gc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const root = open({ path: dir, maxDbs: 4 });
  t.teardown(() => root.close());
  const db = root.openDB<number, string>({ name: 'd' }) as unknown as StagedDb;
  const gc = new GroupCommit(root, 7);
  const expected = new Map<string, number>();
  const waits: Array<Promise<void>> = [];
  for (let i = 0; i < 300; i++) {
    const key = `k${i % 17}`;
    if (i % 5 === 4) {
      gc.remove(db, key);
      expected.delete(key);
    } else {
      gc.put(db, key, i);
      expected.set(key, i);
    }
    if (i % 10 === 0) {
      waits.push(gc.durable());
      await turn();
    }
  }
  waits.push(gc.durable());
  await Promise.all(waits);
  t.equal(gc.stagedWrites, 0, 'nothing left staged');
  for (let k = 0; k < 17; k++) t.equal((db as unknown as { get(k: string): unknown }).get(`k${k}`), expected.get(`k${k}`), `k${k}`);
});

t.test('a failed commit: every waiter and every later wait fails with the cause, onFailure once, nothing unhandled', async (t) => {
  const root = new FakeRoot();
  const gc = new GroupCommit(root as unknown as RootDatabase, 1000);
  const db = root.db('d');
  const failures: StorageError[] = [];
  gc.onFailure((e) => failures.push(e));
  gc.put(db, 'a', 1);
  const waiting = gc.durable();
  const committing = gc.committed();
  await turn();
  await turn(); // the transaction is written and watched (a commit never completes sooner)
  // as lmdb-js reports it: a generic error, the cause in a second rejected promise (errno 28: ENOSPC)
  const cause = Object.assign(new Error('No space left on device'), { code: 28 });
  const commitError = Promise.reject(cause);
  root.txns[0]!.fail(Object.assign(new Error('Commit failed (see commitError for details)'), { commitError }));
  const [durable, committed] = await Promise.allSettled([waiting, committing]);
  t.equal(durable.status, 'rejected');
  t.equal(committed.status, 'rejected');
  const e = (durable as PromiseRejectedResult).reason as StorageError;
  t.ok(e instanceof StorageError);
  t.equal(e.message, 'storage write failed: No space left on device (ENOSPC)', 'the cause, with its errno name');
  t.equal(e.code, 'ENOSPC');
  t.equal((committed as PromiseRejectedResult).reason, e, 'one error for every waiter');
  await turn();
  t.same(failures, [e], 'onFailure called once, with that error');
  gc.put(db, 'b', 2);
  await t.rejects(gc.durable(), e, 'a later wait fails at once with the same error');
  let late: StorageError | null = null;
  gc.onFailure((x) => (late = x));
  t.equal(late, e, 'a listener added after the failure hears of it at once');
  t.equal(root.txns.length, 1, 'no transaction after the failure');
});
