/**
 * The history recorder (test/fixtures/history-recorder.ts): which errors are definite outcomes and which
 * are unknown, times on the given clock, calls still running, timeouts.
 */
import { createServer } from 'node:net';
import t from 'tap';
import { ERROR_STATUS, SquallError, type ErrorCode } from '../../src/api/index.js';
import { SquallClient } from '../../src/client/index.js';
import { HistoryRecorder, resultOfError } from '../fixtures/history-recorder.js';
import type { RegisterCall, RegisterResult } from '../fixtures/linearizability.js';

const put: RegisterCall = { op: 'put', value: 'v' };
const cas: RegisterCall = { op: 'put', value: 'v', ifMatch: 7 };
const create: RegisterCall = { op: 'put', value: 'v', ifNoneMatch: true };
const del: RegisterCall = { op: 'delete' };
const get: RegisterCall = { op: 'get' };

/** A clock that advances 1 ms per reading. */
function ticking(): () => number {
  let now = 100;
  return () => now++;
}

t.test('every error code maps to a definite outcome or to unknown', async (t) => {
  const expected: Record<ErrorCode, (call: RegisterCall) => RegisterResult> = {
    bad_key: () => ({ type: 'failed', code: 'bad_key' }),
    bad_parameter: () => ({ type: 'failed', code: 'bad_parameter' }),
    bad_body: () => ({ type: 'failed', code: 'bad_body' }),
    pool_not_found: () => ({ type: 'failed', code: 'pool_not_found' }),
    route_not_found: () => ({ type: 'failed', code: 'route_not_found' }),
    method_not_allowed: () => ({ type: 'failed', code: 'method_not_allowed' }),
    pool_conflict: () => ({ type: 'failed', code: 'pool_conflict' }),
    trimmed: () => ({ type: 'failed', code: 'trimmed' }),
    too_large: () => ({ type: 'failed', code: 'too_large' }),
    not_yet_stable: () => ({ type: 'failed', code: 'not_yet_stable' }),
    not_found: (c) => (c.op === 'put' ? { type: 'failed', code: 'not_found' } : { type: 'not_found' }),
    deleted: (c) => (c.op === 'put' ? { type: 'failed', code: 'deleted' } : { type: 'deleted', version: 42 }),
    version_mismatch: (c) => (c === cas || c === create ? { type: 'mismatch' } : { type: 'failed', code: 'version_mismatch' }),
    internal: () => ({ type: 'unknown', cause: 'internal' }),
    no_quorum: () => ({ type: 'unknown', cause: 'no_quorum' }),
    view_change: () => ({ type: 'unknown', cause: 'view_change' }),
    overloaded: () => ({ type: 'unknown', cause: 'overloaded' }),
    unavailable: () => ({ type: 'unknown', cause: 'unavailable' }),
  };
  for (const code of Object.keys(ERROR_STATUS) as ErrorCode[]) {
    for (const call of [put, cas, create, del, get]) {
      const e = new SquallError(code, 'x', code === 'deleted' ? { version: 42 } : {});
      t.same(resultOfError(call, e), expected[code](call), `${code} on ${JSON.stringify(call)}`);
    }
  }
  t.same(resultOfError(get, new SquallError('deleted', 'x')), { type: 'deleted' }, 'a tombstone without its version');
  const timeout = new DOMException('timed out', 'TimeoutError');
  t.same(resultOfError(put, timeout), { type: 'unknown', cause: 'timeout' });
  t.same(resultOfError(put, new DOMException('aborted', 'AbortError')), { type: 'unknown', cause: 'timeout' });
  t.same(resultOfError(put, Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })), { type: 'unknown', cause: 'ECONNRESET' });
  const refused = (attempts: number): SquallError => new SquallError('unavailable', 'cannot reach', { cause_code: 'ECONNREFUSED', attempts });
  t.same(resultOfError(put, refused(1)), { type: 'failed', code: 'ECONNREFUSED' }, 'refused on the only attempt: nothing was sent');
  t.same(resultOfError(put, refused(2)), { type: 'unknown', cause: 'unavailable' }, 'refused on a retry: an earlier attempt may have applied');
  t.same(
    resultOfError(put, new SquallError('unavailable', 'cannot reach', { cause_code: 'ECONNRESET', attempts: 1 })),
    { type: 'unknown', cause: 'unavailable' },
    'a connection reset after sending: may have applied',
  );
  t.equal(resultOfError(put, new TypeError('x is not a function')), null, 'a bug in the caller is not an outcome');
});

t.test('the client on a port nobody listens on: refused, nothing sent, a definite failure', async (t) => {
  const port = await new Promise<number>((resolve, reject) => {
    const s = createServer().once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
  const r = new HistoryRecorder();
  const once = new SquallClient({ url: `http://127.0.0.1:${port}`, retryAttemptsMax: 1 });
  const twice = new SquallClient({ url: `http://127.0.0.1:${port}`, retryAttemptsMax: 2, retryDelayMs: 1 });
  t.teardown(() => Promise.all([once.close(), twice.close()]));
  t.match(await r.put(once, 1, '/p/k', 'v'), { result: { type: 'failed', code: 'ECONNREFUSED' } });
  t.match(await r.put(twice, 1, '/p/k', 'v'), { result: { type: 'unknown', cause: 'unavailable' }, responseMs: null }, 'with retries the outcome stays unknown');
});

t.test('record(): answers, definite failures and unknown outcomes, with their times', async (t) => {
  const r = new HistoryRecorder({ nowMs: ticking() });
  const a = await r.record({ client: 1, key: '/p/k', call: put }, async () => ({ version: 5 }));
  t.match(a, { id: 0, client: 1, key: '/p/k', call: put, invokeMs: 100, responseMs: 101, result: { type: 'written', version: 5 } });
  const b = await r.record({ client: 2, key: '/p/k', call: get }, async () => ({ version: 5, value: Buffer.from('v') }));
  t.same(b.result, { type: 'value', value: 'v', version: 5 }, 'a read value is decoded as UTF-8');
  const c = await r.record({ client: 1, key: '/p/k', call: cas }, async () => {
    throw new SquallError('version_mismatch', 'no');
  });
  t.match(c, { result: { type: 'mismatch' }, responseMs: 105 });
  const d = await r.record({ client: 1, key: '/p/k', call: put }, async () => {
    throw new SquallError('unavailable', 'cannot reach');
  });
  t.match(d, { result: { type: 'unknown', cause: 'unavailable' }, responseMs: null }, 'an unknown outcome has no response time');
  await t.rejects(
    r.record({ client: 3, key: '/p/k', call: put }, () => {
      throw new TypeError('bug');
    }),
    TypeError,
    'an error that is not an outcome is rethrown',
  );
  const h = r.history();
  t.same(
    h.map((o) => [o.id, o.result.type]),
    [
      [0, 'written'],
      [1, 'value'],
      [2, 'mismatch'],
      [3, 'unknown'],
      [4, 'unknown'],
    ],
    'every call is in the history, the rethrown one as unknown',
  );
  h[0]!.result = { type: 'mismatch' };
  t.equal(r.history()[0]!.result.type, 'written', 'history() hands out copies');
  t.equal(r.size, 5);
});

t.test('a call still running is unknown in the history until it answers', async (t) => {
  const r = new HistoryRecorder({ nowMs: ticking() });
  let answer!: (v: { version: number }) => void;
  const pending = r.record({ client: 1, key: '/p/k', call: put }, () => new Promise((resolve) => (answer = resolve)));
  t.match(r.history()[0], { result: { type: 'unknown' }, responseMs: null });
  answer({ version: 9 });
  await pending;
  t.match(r.history()[0], { result: { type: 'written', version: 9 }, responseMs: 101 });
});

t.test('a call over opTimeoutMs is aborted and recorded as unknown, even if it ignores its signal', async (t) => {
  const r = new HistoryRecorder({ opTimeoutMs: 20 });
  let seen: AbortSignal | undefined;
  let late!: () => void;
  const op = await r.record({ client: 1, key: '/p/k', call: put }, (signal) => {
    seen = signal;
    return new Promise((resolve) => (late = () => resolve({ version: 1 })));
  });
  t.match(op, { result: { type: 'unknown', cause: 'timeout' }, responseMs: null });
  t.equal(seen?.aborted, true, 'the signal given to the call was aborted');
  late();
  await new Promise((resolve) => setImmediate(resolve));
  t.match(r.history()[0], { result: { type: 'unknown' } }, 'a late answer does not change the record');
});

t.test('options are checked', async (t) => {
  t.throws(() => new HistoryRecorder({ opTimeoutMs: 0 }), { message: /opTimeoutMs must be a positive integer/ });
  const r = new HistoryRecorder({ opsMax: 1 });
  await r.record({ client: 1, key: '/p/k', call: get }, async () => ({ version: 1, value: 'x' }));
  await t.rejects(r.record({ client: 1, key: '/p/k', call: get }, async () => ({ version: 1, value: 'x' })), { message: /opsMax 1/ });
});
