/**
 * The linearizability checker (test/fixtures/linearizability.ts) on small hand-written histories that are
 * and are not linearizable, and on generated ones: histories built from a sequential reference run with
 * concurrency windows laid over it are always linearizable; the same with one read turned stale are not.
 */
import fc from 'fast-check';
import t, { type Test } from 'tap';
import { AssertionFailure } from '../../src/assert.js';
import { checkLinearizability, type CheckResult, type HistoryOp, type RegisterCall, type RegisterResult } from '../fixtures/linearizability.js';
import { genOp, genSpec, historyOf, staleReads, type GenSpec } from '../fixtures/register-histories.js';

type Row = [client: number, call: RegisterCall, invokeMs: number, responseMs: number | null, result: RegisterResult, key?: string];

/** A history from rows; ids are the row numbers. */
function hist(...rows: Row[]): HistoryOp[] {
  return rows.map(([client, call, invokeMs, responseMs, result, key], id) => ({ id, client, key: key ?? '/p/k', call, invokeMs, responseMs, result }));
}
const put = (value: string, o: { ifMatch?: number; ifNoneMatch?: boolean } = {}): RegisterCall => ({ op: 'put', value, ...o });
const del = (ifMatch?: number): RegisterCall => (ifMatch === undefined ? { op: 'delete' } : { op: 'delete', ifMatch });
const get: RegisterCall = { op: 'get' };
const ok = (version: number): RegisterResult => ({ type: 'written', version });
const val = (value: string, version: number): RegisterResult => ({ type: 'value', value, version });
const deleted = (version?: number): RegisterResult => (version === undefined ? { type: 'deleted' } : { type: 'deleted', version });
const notFound: RegisterResult = { type: 'not_found' };
const mismatch: RegisterResult = { type: 'mismatch' };
const unknown: RegisterResult = { type: 'unknown', cause: 'timeout' };

function linearizable(t: Test, h: HistoryOp[], what: string): CheckResult {
  const r = checkLinearizability(h);
  t.equal(r.verdict, 'linearizable', `${what}\n${r.text}`);
  return r;
}

/** Not linearizable, with the violation's core exactly `core` (op ids) on `key`. */
function violation(t: Test, h: HistoryOp[], core: number[], what: string, key = '/p/k'): CheckResult {
  const r = checkLinearizability(h);
  t.equal(r.verdict, 'not_linearizable', what);
  const v = r.keys.find((k) => k.key === key)?.violation;
  t.ok(v, `${what}: a violation on ${key}`);
  if (v) {
    t.same(v.ops.map((o) => o.id), core, `${what}: the ops that cannot all be true\n${v.text}`);
    t.ok(v.minimal, `${what}: shown minimal`);
    t.match(v.text, key);
    for (const id of core) t.match(v.text, `op ${id} `, `${what}: the text names op ${id}`);
    t.match(r.text, /^not_linearizable: /);
  }
  return r;
}

t.test('linearizable histories', async (t) => {
  t.equal(checkLinearizability([]).verdict, 'linearizable', 'the empty history');
  linearizable(
    t,
    hist([1, put('a'), 0, 10, ok(10)], [2, get, 2, 5, notFound], [3, get, 3, 8, val('a', 10)], [4, get, 11, 12, val('a', 10)]),
    'reads overlapping a put see before or after it',
  );
  linearizable(
    t,
    hist([1, put('a'), 0, 10, ok(5)], [2, put('b'), 1, 9, ok(6)], [3, get, 2, 8, val('a', 5)], [4, get, 11, 12, val('b', 6)]),
    'concurrent puts take effect in version order (a first)',
  );
  linearizable(
    t,
    hist([1, put('a'), 0, 10, ok(6)], [2, put('b'), 1, 9, ok(5)], [3, get, 2, 8, val('b', 5)], [4, get, 11, 12, val('a', 6)]),
    'concurrent puts take effect in version order (b first)',
  );
  linearizable(
    t,
    hist([1, put('a'), 0, 1, ok(1)], [2, put('b'), 2, null, unknown], [3, get, 3, 4, val('a', 1)], [4, get, 10, 11, val('b', 7)]),
    'an unknown-outcome put that took effect after a later read',
  );
  linearizable(
    t,
    hist(
      [1, put('a'), 0, 1, ok(1)],
      [2, put('b'), 2, null, unknown],
      [3, get, 3, 4, val('a', 1)],
      [4, get, 10, 11, val('a', 1)],
      [1, put('c'), 12, 13, ok(9)],
      [4, get, 14, 15, val('c', 9)],
    ),
    'an unknown-outcome put that never took effect',
  );
  linearizable(
    t,
    hist(
      [1, put('a'), 0, 1, ok(1)],
      [2, put('b', { ifMatch: 1 }), 2, 3, ok(2)],
      [3, put('c', { ifMatch: 1 }), 2, 4, mismatch],
      [2, put('d', { ifMatch: 2 }), 5, 6, ok(3)],
      [3, get, 7, 8, val('d', 3)],
    ),
    'a CAS chain',
  );
  linearizable(
    t,
    hist([1, put('a'), 0, 1, ok(1)], [2, put('b', { ifMatch: 1 }), 2, 6, mismatch], [3, put('c', { ifMatch: 1 }), 3, 5, ok(4)], [4, get, 7, 8, val('c', 4)]),
    'two overlapping CAS from one version: the later-invoked one wins',
  );
  linearizable(
    t,
    hist(
      [1, put('a', { ifNoneMatch: true }), 0, 4, mismatch],
      [2, put('b', { ifNoneMatch: true }), 1, 3, ok(2)],
      [3, del(), 5, 6, ok(3)],
      [1, get, 7, 8, deleted(3)],
      [2, put('c', { ifNoneMatch: true }), 9, 10, ok(4)],
      [3, get, 11, 12, val('c', 4)],
    ),
    'create-if-absent: one of two concurrent creates wins, and a deleted key can be created again',
  );
  linearizable(
    t,
    hist(
      [1, get, 0, 1, notFound],
      [2, del(), 0, 1, notFound],
      [1, put('a'), 2, 3, ok(5)],
      [2, del(7), 4, 5, mismatch],
      [2, del(5), 6, 7, ok(6)],
      [1, get, 8, 9, deleted(6)],
      [2, del(), 8, 9, deleted(6)],
      [3, get, 10, 11, deleted()],
    ),
    'deletes: 404 not_found before any write, 404 deleted after one, If-Match on a delete',
  );
  linearizable(
    t,
    hist([1, put('a'), 0, 1, ok(1)], [2, put('b', { ifMatch: 1 }), 2, null, unknown], [3, get, 5, 6, val('b', 4)], [3, put('c', { ifMatch: 4 }), 7, 8, ok(8)]),
    'an unknown-outcome CAS whose effect a read observed, then a CAS on the version the read gave',
  );
  linearizable(
    t,
    hist([1, put('a'), 0, 1, ok(1)], [2, put('x'), 2, null, unknown], [3, put('y', { ifMatch: 1 }), 3, 4, mismatch]),
    'a 412 explained by an unknown-outcome write that took effect',
  );
  const r = linearizable(
    t,
    hist(
      [1, put('a'), 0, 1, ok(1)],
      [2, get, 2, null, unknown],
      [3, put('b'), 3, 4, { type: 'failed', code: 'pool_not_found' }],
      [4, get, 5, 6, val('a', 1)],
    ),
    'unknown-outcome reads and definite failures constrain nothing',
  );
  t.equal(r.keys[0]!.opsChecked, 2, 'only the put and the answered read are checked');
});

t.test('histories that are not linearizable, each with the smallest set of ops that proves it', async (t) => {
  violation(t, hist([1, put('a'), 0, 1, ok(1)], [1, put('b'), 2, 3, ok(2)], [2, get, 4, 5, val('a', 1)]), [1, 2], 'a stale read after a completed write');
  violation(t, hist([1, put('a'), 0, 1, ok(5)], [2, get, 2, 3, notFound]), [0, 1], 'a lost acknowledged write');
  violation(t, hist([1, put('a'), 0, 1, ok(1)], [2, del(), 2, 3, ok(2)], [3, get, 4, 5, val('a', 1)]), [1, 2], 'an acknowledged delete undone');
  violation(
    t,
    hist([1, put('a'), 0, 1, ok(1)], [2, put('b', { ifMatch: 1 }), 2, 4, ok(2)], [3, put('c', { ifMatch: 1 }), 3, 5, ok(3)]),
    [1, 2],
    'two CAS successes from the same version',
  );
  violation(t, hist([1, put('a'), 0, 1, ok(1)], [2, get, 2, 3, val('a', 7)]), [0, 1], 'a get returning a version never written');
  violation(t, hist([1, put('a'), 0, 1, ok(1)], [2, get, 2, 3, val('zzz', 1)]), [1], 'a get returning a value never written');
  violation(t, hist([1, put('a'), 0, 1, ok(1)], [1, put('b'), 2, 3, ok(2)], [2, get, 4, 5, val('a', 3)]), [1, 2], 'a put applied twice (a new version of an old value)');
  violation(t, hist([1, put('a'), 0, 1, ok(5)], [2, put('b'), 2, 3, ok(3)]), [0, 1], 'versions going backwards between puts');
  violation(
    t,
    hist([1, put('a'), 0, 10, ok(5)], [2, put('b'), 0, 10, ok(6)], [3, get, 1, 9, val('b', 6)], [4, get, 9.5, 9.8, val('a', 5)]),
    [2, 3],
    'versions going backwards between reads',
  );
  violation(
    t,
    hist([1, put('a'), 0, 1, ok(5)], [2, put('b'), 2, null, unknown], [3, get, 3, 4, val('b', 4)]),
    [0, 2],
    'an unknown-outcome put observed at a version below an earlier one',
  );
  violation(t, hist([1, put('a'), 0, 1, ok(1)], [2, put('b', { ifNoneMatch: true }), 2, 3, ok(2)]), [0, 1], 'If-None-Match: * applied on a live key');
  violation(t, hist([1, put('a'), 0, 1, ok(1)], [2, put('y', { ifMatch: 1 }), 3, 4, mismatch]), [0, 1], 'a 412 although the version matched');
  violation(
    t,
    hist([1, put('a'), 0, 1, ok(1)], [2, put('b', { ifMatch: 1 }), 2, 3, ok(2)], [3, get, 4, 5, val('a', 1)]),
    [1, 2],
    'an acknowledged CAS lost: a later read sees the value it replaced',
  );
  violation(
    t,
    hist([1, put('a'), 0, 1, ok(1)], [1, put('b'), 2, 3, ok(2)], [2, put('c', { ifMatch: 1 }), 4, 5, ok(3)]),
    [1, 2],
    'a CAS that succeeded on a version a completed write had already replaced',
  );
  violation(t, hist([1, get, 0, 1, val('a', 1)], [2, put('a'), 2, 3, ok(1)]), [0], 'a read of a write invoked after the read answered');
  violation(
    t,
    hist(
      [1, put('b'), 0, null, unknown],
      [2, put('x', { ifNoneMatch: true }), 1, 2, mismatch],
      [3, put('y', { ifMatch: 3 }), 3, 4, mismatch],
      [4, get, 5, 6, val('b', 3)],
    ),
    [1, 2, 3],
    'an unknown-outcome put that a 412 proved is not at version 3, read at version 3',
  );
});

t.test('keys are checked independently and the result names the bad key', async (t) => {
  const h = hist(
    [1, put('a'), 0, 1, ok(1), '/p/good'],
    [2, put('a'), 0, 1, ok(2), '/p/bad'],
    [1, put('b'), 2, 3, ok(3), '/p/good'],
    [2, put('b'), 2, 3, ok(4), '/p/bad'],
    [3, get, 4, 5, val('b', 3), '/p/good'],
    [3, get, 4, 5, val('a', 2), '/p/bad'],
  );
  const r = violation(t, h, [3, 5], 'a stale read on one key', '/p/bad');
  t.same(
    r.keys.map((k) => [k.key, k.verdict]),
    [
      ['/p/bad', 'not_linearizable'],
      ['/p/good', 'linearizable'],
    ],
  );
});

t.test('a search over its state limit answers undecided, never hangs', async (t) => {
  // twelve concurrent puts, each read once right after: linearizable, but not within 5 states
  const rows: Row[] = [];
  for (let i = 0; i < 12; i++) rows.push([i, put(`v${i}`), 0, 100, ok(10 + i)]);
  for (let i = 0; i < 12; i++) rows.push([20 + i, get, 1 + i, 99, val(`v${i}`, 10 + i)]);
  const h = hist(...rows);
  const r = checkLinearizability(h, { searchStatesMax: 5, explainStatesMax: 5 });
  t.equal(r.verdict, 'undecided');
  t.equal(r.keys[0]!.verdict, 'undecided');
  t.match(r.text, /undecided: search limit reached \(searchStatesMax 5\) on \/p\/k/);
  t.equal(checkLinearizability(h).verdict, 'linearizable', 'within the default limit it is decided');
});

t.test('a malformed history is refused with the op it is about', async (t) => {
  t.throws(() => checkLinearizability(hist([1, put('a'), 0, 1, ok(1)], [1, put('a'), 0, 1, ok(2)]).map((o) => ({ ...o, id: 7 }))), {
    message: /history op id 7 appears twice/,
  });
  t.throws(() => checkLinearizability(hist([1, put('a'), 0, 1, val('a', 1)])), { message: /op 0 .*a put cannot answer 'value'/ });
  t.throws(() => checkLinearizability(hist([1, get, 5, 1, notFound])), { message: /responseMs must be >= invokeMs/ });
  t.throws(() => checkLinearizability(hist([1, put('a'), 0, 1, mismatch])), { message: /412 on an unconditional put/ });
  t.throws(() => checkLinearizability(hist([1, put('a'), 0, 1, unknown])), { message: /an unknown outcome has responseMs null/ });
  t.throws(() => checkLinearizability([], { searchStatesMax: 0 }), AssertionFailure);
});

t.test('generated histories (sequential reference run, concurrency windows laid over it) are linearizable', async (t) => {
  let runs = 0;
  fc.assert(
    fc.property(genSpec({ keysMax: 3, clientsMax: 8, opsPerClientMax: 15 }), (spec) => {
      runs++;
      const r = checkLinearizability(historyOf(spec));
      if (r.verdict !== 'linearizable') throw new Error(r.text);
    }),
    { numRuns: 200 },
  );
  t.ok(runs >= 200);
});

t.test('the same histories with one read turned stale are rejected when that is certain', async (t) => {
  let certain = 0;
  let caughtOthers = 0;
  fc.assert(
    fc.property(genSpec({ keysMax: 3, clientsMax: 8, opsPerClientMax: 15 }), (spec) => {
      for (const m of staleReads(historyOf(spec)).slice(0, 4)) {
        const r = checkLinearizability(m.history);
        if (m.guaranteed) {
          certain++;
          if (r.verdict !== 'not_linearizable') throw new Error(`read op ${m.read.id} turned stale was not rejected: ${r.text}`);
        } else if (r.verdict === 'not_linearizable') {
          caughtOthers++;
        }
        if (r.verdict === 'undecided') throw new Error(`undecided on a small history: ${r.text}`);
        const v = r.keys.find((k) => k.violation)?.violation;
        if (v) {
          // everything else comes from a linearizable history: the stale read must be in any violating set...
          if (!v.ops.some((o) => o.id === m.read.id)) throw new Error(`the violation does not involve the stale read op ${m.read.id}: ${v.text}`);
          // ...and the set alone (everything else removed) is still not linearizable
          const alone = checkLinearizability(v.ops);
          if (alone.verdict !== 'not_linearizable') throw new Error(`the violation's ops alone are ${alone.verdict}: ${v.text}`);
        }
      }
    }),
    { numRuns: 150 },
  );
  t.ok(certain >= 50, `certain violations generated: ${certain}`);
  t.comment(`certain stale reads rejected: ${certain}; others rejected too: ${caughtOthers}`);
});

t.test('a history of 3200 ops over 8 keys from 16 clients, about 1 in 7 with an unknown outcome', async (t) => {
  const clients = 16;
  const perClient = 200;
  const ops = fc.sample(genOp(8), { numRuns: clients * perClient, seed: 20260526 });
  const spec: GenSpec = { keys: 8, clients: Array.from({ length: clients }, (_, c) => ops.slice(c * perClient, (c + 1) * perClient)) };
  const h = historyOf(spec);
  t.equal(h.length, 3200);
  t.ok(h.filter((o) => o.result.type === 'unknown').length > 300, 'many unknown outcomes');
  const r = checkLinearizability(h);
  t.equal(r.verdict, 'linearizable', r.text);
  t.equal(r.keys.length, 8);
  const stale = staleReads(h).filter((m) => m.guaranteed);
  t.ok(stale.length > 0);
  for (const m of [stale[0]!, stale[Math.floor(stale.length / 2)]!, stale[stale.length - 1]!]) {
    const x = checkLinearizability(m.history);
    t.equal(x.verdict, 'not_linearizable', `stale read op ${m.read.id}`);
    t.ok(x.keys.find((k) => k.violation)?.violation?.ops.some((o) => o.id === m.read.id), 'the violation involves the stale read');
  }
});
