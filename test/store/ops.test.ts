import fc from 'fast-check';
import t from 'tap';
import { decodeOp, encodeOp, type Op } from '../../src/store/ops.js';

t.test('ops round-trip through the binary and msgpack encodings', async (t) => {
  const origin = { o: fc.integer({ min: 0, max: 65535 }), i: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }) };
  const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
  const put = fc.record({ t: fc.constant('put' as const), ...origin, k: fc.string({ unit: 'grapheme', maxLength: 40 }), v: fc.uint8Array({ maxLength: 300 }), c: fc.string({ maxLength: 30 }).map((s) => s.replace(/[^\x20-\x7e]/g, 'x')), m: opt(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })), n: opt(fc.constant(1 as const)), r: opt(fc.string({ unit: 'grapheme', maxLength: 40 })) });
  const del = fc.record({ t: fc.constant('del' as const), ...origin, k: fc.string({ maxLength: 40 }), m: opt(fc.nat()), r: opt(fc.string({ maxLength: 20 })) });
  const other = fc.oneof(
    fc.record({ t: fc.constant('bar' as const), ...origin }),
    fc.record({ t: fc.constant('sweep' as const), ...origin, p: fc.string(), cut: fc.nat(), from: fc.string(), max: fc.nat() }),
    fc.record({ t: fc.constant('pool-' as const), ...origin, p: fc.string() }),
  );
  const strip = (op: Op): string => {
    const o: Record<string, unknown> = 'v' in op ? { ...op, v: Array.from(op.v) } : { ...op };
    return JSON.stringify(Object.keys(o).sort().map((k) => [k, o[k]]));
  };
  fc.assert(
    fc.property(fc.oneof(put, del, other), (op) => {
      const clean = Object.fromEntries(Object.entries(op).filter(([, v]) => v !== undefined)) as unknown as Op;
      const back = strip(decodeOp(encodeOp(clean)));
      if (back !== strip(clean)) throw new Error(`round trip changed ${strip(clean)} into ${back}`);
    }),
    { numRuns: 500 },
  );
  t.pass('500 random ops round-tripped');
});
