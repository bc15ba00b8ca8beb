import t from 'tap';
import { parseRetryAfterS } from '../../src/client/exchange.js';
import { Query, encodePath } from '../../src/client/paths.js';
import { RequestIds } from '../../src/client/request-id.js';
import { timeArgToUs } from '../../src/client/time-arg.js';

t.test('encodePath keeps separators and unreserved characters, encodes the rest per segment', async (t) => {
  t.equal(encodePath('/p/a.b/c-d_e~f/9'), '/p/a.b/c-d_e~f/9');
  t.equal(encodePath('/p/a b/c'), '/p/a%20b/c');
  t.equal(encodePath('/p/ü/%/?/#'), '/p/%C3%BC/%25/%3F/%23');
  t.equal(encodePath('/p/../x'), '/p/%2E%2E/x');
  t.equal(encodePath('/p/./x'), '/p/%2E/x');
  t.equal(encodePath('/p/.hidden'), '/p/.hidden', 'a dot-file name is not a dot segment');
  t.equal(decodeURIComponent(encodePath('/p/a+b&c=d')), '/p/a+b&c=d');
});

t.test('Query builds nothing without parameters and encodes values', async (t) => {
  t.equal(new Query().toString(), '');
  t.equal(new Query().add('a', undefined).add('b', null).toString(), '');
  t.equal(new Query().flag('history').add('from', 5).toString(), '?history&from=5');
  t.equal(new Query().add('prefix', '/p/a b&c').add('stable', true).toString(), '?prefix=%2Fp%2Fa%20b%26c&stable=true');
});

t.test('Retry-After: seconds or an HTTP date; anything else is ignored', async (t) => {
  t.equal(parseRetryAfterS('0'), 0);
  t.equal(parseRetryAfterS('7'), 7);
  const now = Date.parse('2026-11-25T12:00:00Z');
  t.equal(parseRetryAfterS('Wed, 25 Nov 2026 12:00:03 GMT', now), 3);
  t.equal(parseRetryAfterS('Wed, 25 Nov 2026 11:00:00 GMT', now), 0, 'a date in the past means now');
  t.equal(parseRetryAfterS('soon'), undefined);
  t.equal(parseRetryAfterS('-1'), undefined);
  t.equal(parseRetryAfterS(undefined), undefined);
  t.equal(parseRetryAfterS(['1', '2']), undefined);
});

t.test('request ids never repeat within a generator and differ across generators', async (t) => {
  const a = new RequestIds();
  const b = new RequestIds();
  const seen = new Set<string>();
  for (let i = 0; i < 10_000; i++) seen.add(a.next());
  t.equal(seen.size, 10_000);
  t.notOk(seen.has(b.next()));
  t.match(a.next(), /^[A-Za-z0-9_-]{16}-[0-9a-z]+$/, 'a header-safe token');
});

t.test('time arguments: µs, Date, RFC 3339 in any offset, µs digits', async (t) => {
  t.equal(timeArgToUs(1_764_072_000_123_456), 1_764_072_000_123_456);
  t.equal(timeArgToUs(new Date('2025-11-25T12:00:00.123Z')), 1_764_072_000_123_000);
  t.equal(timeArgToUs('2025-11-25T12:00:00.123456Z'), 1_764_072_000_123_456);
  t.equal(timeArgToUs('2025-11-25T12:00:00.123456789Z'), 1_764_072_000_123_456, 'ns truncated to µs');
  t.equal(timeArgToUs('2025-11-25T14:00:00+02:00'), 1_764_072_000_000_000);
  t.equal(timeArgToUs('1764072000123456'), 1_764_072_000_123_456);
  for (const bad of ['', 'now', '2025-11-25', '2025-11-25T12:00:00', -1, 0.5, Number.MAX_SAFE_INTEGER + 2, new Date(NaN)]) {
    t.throws(() => timeArgToUs(bad), { code: 'bad_parameter', details: { parameter: 'at' } }, `bad: ${String(bad)}`);
  }
});
