/**
 * The checker against a brute-force oracle on tiny random histories: the oracle tries every order that
 * respects real time, every subset of the unknown-outcome writes and every version for them, against a
 * plain sequential register. The two must agree on every history (most random ones are not linearizable),
 * which tests the search's reductions (forced reads, covering, class order, out-of-reach pruning, the
 * window scan) for soundness and completeness; and a violation's ops alone must be rejected by the oracle.
 */
import fc from 'fast-check';
import t from 'tap';
import { checkLinearizability, type HistoryOp, type RegisterCall, type RegisterResult } from '../fixtures/linearizability.js';

/** The oracle's register; `last` is the highest version written so far. */
interface Register {
  kind: 'absent' | 'live' | 'deleted';
  value: string;
  version: number;
  last: number;
}

/** The register after `op` (a write applied with version v), or null when its outcome is impossible. */
function apply(s: Register, op: HistoryOp, v: number): Register | null {
  const c = op.call;
  const r = op.result;
  const tombstone = (version?: number): boolean => s.kind === 'deleted' && (version === undefined || version === s.version);
  if (c.op === 'get') {
    if (r.type === 'value') return s.kind === 'live' && s.value === r.value && s.version === r.version ? s : null;
    if (r.type === 'not_found') return s.kind === 'absent' ? s : null;
    return r.type === 'deleted' && tombstone(r.version) ? s : null;
  }
  let holds: boolean;
  if (c.op === 'delete') holds = s.kind === 'live' && (c.ifMatch === undefined || s.version === c.ifMatch);
  else if (c.ifMatch !== undefined) holds = s.kind === 'live' && s.version === c.ifMatch;
  else holds = c.ifNoneMatch ? s.kind !== 'live' : true;
  switch (r.type) {
    case 'mismatch':
      // the store answers a delete on a key that is not live with 404, so a delete's 412 means live
      if (c.op === 'delete') return s.kind === 'live' && s.version !== c.ifMatch ? s : null;
      return holds ? null : s;
    case 'not_found':
      return c.op === 'delete' && s.kind === 'absent' ? s : null;
    case 'deleted':
      return c.op === 'delete' && tombstone(r.version) ? s : null;
    default: // written, or unknown and applied here
      if (!holds || v <= s.last) return null;
      return c.op === 'put' ? { kind: 'live', value: c.value, version: v, last: v } : { kind: 'deleted', value: '', version: v, last: v };
  }
}

function oracle(h: readonly HistoryOp[]): boolean {
  const ops = h.filter((o) => o.result.type !== 'failed' && !(o.call.op === 'get' && o.result.type === 'unknown'));
  const mentioned = h.flatMap((o) => [o.result.type === 'written' || o.result.type === 'value' ? o.result.version : 0, o.call.op === 'get' ? 0 : (o.call.ifMatch ?? 0)]);
  const versionMax = Math.max(2, ...mentioned) + ops.length + 1;
  const done = ops.map(() => false);
  const search = (s: Register): boolean => {
    if (ops.every((o, i) => done[i] || o.result.type === 'unknown')) return true;
    const firstResponseMs = Math.min(...ops.map((o, i) => (done[i] || o.responseMs === null ? Infinity : o.responseMs)));
    for (let i = 0; i < ops.length; i++) {
      const o = ops[i]!;
      if (done[i] || o.invokeMs > firstResponseMs) continue;
      const versions = o.result.type === 'unknown' ? Array.from({ length: versionMax + 1 }, (_, k) => k) : [o.result.type === 'written' ? o.result.version : -1];
      for (const v of versions) {
        const next = apply(s, o, v);
        if (next === null) continue;
        done[i] = true;
        const found = search(next);
        done[i] = false;
        if (found) return true;
      }
    }
    return false;
  };
  return search({ kind: 'absent', value: '', version: -1, last: -1 });
}

const value = fc.constantFrom('a', 'b', 'c');
const version = fc.integer({ min: 1, max: 5 });
const arbCall: fc.Arbitrary<RegisterCall> = fc.oneof(
  fc.record({ op: fc.constant('put' as const), value }),
  fc.record({ op: fc.constant('put' as const), value, ifMatch: version }),
  fc.record({ op: fc.constant('put' as const), value, ifNoneMatch: fc.constant(true) }),
  fc.constant({ op: 'delete' as const }),
  fc.record({ op: fc.constant('delete' as const), ifMatch: version }),
  fc.constant({ op: 'get' as const }),
);

/** Any result the call could have (consistent or not with the rest of the history). */
function arbResult(c: RegisterCall): fc.Arbitrary<RegisterResult> {
  const tombstones = [fc.record({ type: fc.constant('deleted' as const), version }), fc.constant<RegisterResult>({ type: 'deleted' })];
  if (c.op === 'get') {
    return fc.oneof(fc.record({ type: fc.constant('value' as const), value, version }), fc.constant<RegisterResult>({ type: 'not_found' }), ...tombstones);
  }
  const written = fc.record({ type: fc.constant('written' as const), version });
  const results: fc.Arbitrary<RegisterResult>[] = [written, written, fc.constant<RegisterResult>({ type: 'unknown' })];
  if (c.ifMatch !== undefined || (c.op === 'put' && c.ifNoneMatch === true)) results.push(fc.constant<RegisterResult>({ type: 'mismatch' }));
  if (c.op === 'delete') results.push(fc.constant<RegisterResult>({ type: 'not_found' }), tombstones[0]!);
  return fc.oneof(...results);
}

const arbRow = arbCall.chain((call) =>
  fc.record({ call: fc.constant(call), result: arbResult(call), invokeMs: fc.integer({ min: 0, max: 8 }), durationMs: fc.integer({ min: 0, max: 4 }), client: fc.nat(3) }),
);
const arbTiny = fc.array(arbRow, { minLength: 1, maxLength: 6 }).map((rows) =>
  rows.map(
    (r, id): HistoryOp => ({
      id,
      client: r.client,
      key: '/p/k',
      call: r.call,
      invokeMs: r.invokeMs,
      responseMs: r.result.type === 'unknown' ? null : r.invokeMs + r.durationMs,
      result: r.result,
    }),
  ),
);

t.test('the checker agrees with a brute-force oracle on tiny random histories', async (t) => {
  let linearizable = 0;
  let runs = 0;
  fc.assert(
    fc.property(arbTiny, (h) => {
      runs++;
      const want = oracle(h) ? 'linearizable' : 'not_linearizable';
      for (const windowOps of [2, 64]) {
        const got = checkLinearizability(h, { windowOps });
        if (got.verdict !== want) throw new Error(`oracle: ${want}; checker (windowOps ${windowOps}): ${got.text}\n${JSON.stringify(h)}`);
        const v = got.keys[0]?.violation;
        if (v && oracle(v.ops)) throw new Error(`the oracle linearizes the violation's ops alone: ${v.text}`);
      }
      if (want === 'linearizable') linearizable++;
    }),
    { numRuns: 2000 },
  );
  t.equal(runs, 2000);
  t.ok(linearizable > 200 && linearizable < 1800, `both verdicts are common: ${linearizable} of ${runs} linearizable`);
});
