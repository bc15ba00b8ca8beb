import fc from 'fast-check';
import t from 'tap';
import { SquallError } from '../../src/api/errors.js';
import { httpNode } from '../fixtures/http-node.js';

/**
 * Random sequences of put / delete / compare-and-put / get (current, at a past version, at a past time)
 * against a real node over HTTP, checked against a simple in-memory model of each key's versions.
 */
interface ModelVersion {
  version: number;
  timestampUs: number;
  value: string | null; // null: a delete
}

type Cmd =
  | { t: 'put'; key: number; value: string }
  | { t: 'cas'; key: number; value: string; stale: boolean }
  | { t: 'del'; key: number }
  | { t: 'get'; key: number }
  | { t: 'getVersion'; key: number; pick: number; offset: number }
  | { t: 'getAt'; key: number; pick: number; offset: number };

const KEYS = 4;
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('put' as const), key: fc.nat(KEYS - 1), value: fc.string({ maxLength: 12 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('cas' as const), key: fc.nat(KEYS - 1), value: fc.string({ maxLength: 12 }), stale: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('del' as const), key: fc.nat(KEYS - 1) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('get' as const), key: fc.nat(KEYS - 1) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('getVersion' as const), key: fc.nat(KEYS - 1), pick: fc.nat(1000), offset: fc.integer({ min: -1, max: 1 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('getAt' as const), key: fc.nat(KEYS - 1), pick: fc.nat(1000), offset: fc.integer({ min: -1, max: 1 }) }) },
);

/** The model's answer for a read at a point: the newest version satisfying `ok`. */
function expectAt(versions: ModelVersion[], ok: (v: ModelVersion) => boolean): { code: 'not_found' | 'deleted' } | { value: string; version: number } {
  let found: ModelVersion | undefined;
  for (const v of versions) if (ok(v)) found = v;
  if (!found) return { code: 'not_found' };
  if (found.value === null) return { code: 'deleted' };
  return { value: found.value, version: found.version };
}

function check(got: unknown, want: unknown, what: string): void {
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`${what}: got ${JSON.stringify(got)}, model says ${JSON.stringify(want)}`);
}

async function outcome(p: Promise<{ value: Buffer; version: number }>): Promise<{ code: string } | { value: string; version: number }> {
  try {
    const r = await p;
    return { value: r.value.toString('utf8'), version: r.version };
  } catch (e) {
    if (e instanceof SquallError) return { code: e.code };
    throw e;
  }
}

t.test('random put/delete/cas/get sequences agree with an in-memory model', async (t) => {
  const { client } = await httpNode(t);
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 30 }), async (cmds) => {
      const pool = `/m${run++}`;
      await client.createPool(pool, { type: 'persistent' });
      const model = new Map<number, ModelVersion[]>();
      const all: ModelVersion[] = [];
      const versionsOf = (k: number): ModelVersion[] => model.get(k) ?? [];
      for (const c of cmds) {
        const key = `${pool}/k${c.key}`;
        const versions = versionsOf(c.key);
        const current = versions[versions.length - 1];
        switch (c.t) {
          case 'put':
          case 'cas': {
            const live = current && current.value !== null;
            const ifMatch = c.t === 'cas' ? (live ? (c.stale ? current!.version + 1 : current!.version) : 0) : undefined;
            const shouldFail = c.t === 'cas' && (!live || c.stale);
            try {
              const r = await client.put(key, c.value, ifMatch === undefined ? {} : { ifMatch });
              if (shouldFail) throw new Error(`cas with If-Match ${ifMatch} should have failed`);
              if (current && r.version <= current.version) throw new Error('versions must increase');
              if (r.previous_version_by_key !== (current?.version ?? null)) throw new Error('previous_version_by_key');
              const v = { version: r.version, timestampUs: r.timestamp_us, value: c.value };
              model.set(c.key, [...versions, v]);
              all.push(v);
            } catch (e) {
              if (!(e instanceof SquallError) || !shouldFail || e.code !== 'version_mismatch') throw e;
            }
            break;
          }
          case 'del': {
            try {
              const r = await client.delete(key);
              if (!current || current.value === null) throw new Error('delete of a missing or deleted key should fail');
              const v = { version: r.version, timestampUs: r.timestamp_us, value: null };
              model.set(c.key, [...versions, v]);
              all.push(v);
            } catch (e) {
              if (!(e instanceof SquallError)) throw e;
              const want = !current ? 'not_found' : current.value === null ? 'deleted' : 'none';
              if (e.code !== want) throw new Error(`delete answered ${e.code}, model says ${want}`);
            }
            break;
          }
          case 'get': {
            const got = await outcome(client.get(key));
            check(got, expectAt(versions, () => true), `get ${key}`);
            break;
          }
          case 'getVersion': {
            if (versions.length === 0) break;
            const base = versions[c.pick % versions.length]!.version + c.offset;
            if (base < 0) break;
            const got = await outcome(client.get(key, { version: base }));
            check(got, expectAt(versions, (v) => v.version <= base), `get ${key} at version ${base}`);
            break;
          }
          case 'getAt': {
            if (all.length === 0) break;
            const at = all[c.pick % all.length]!.timestampUs + c.offset;
            const got = await outcome(client.get(key, { at }));
            check(got, expectAt(versions, (v) => v.timestampUs <= at), `get ${key} at time ${at}`);
            break;
          }
        }
      }
      // history agrees with the model too
      for (const [k, versions] of model) {
        const h = await client.history(`${pool}/k${k}`);
        if (JSON.stringify(h.versions.map((v) => [v.version, v.deleted])) !== JSON.stringify(versions.map((v) => [v.version, v.value === null]))) {
          throw new Error(`history of k${k} differs from the model`);
        }
      }
    }),
    { numRuns: 25, endOnFailure: true },
  );
  t.pass('25 random sequences agreed with the model');
});
