import type { Hono } from 'hono';
import { SquallError } from '../src/api/errors.js';
import { HEADER, type Durability } from '../src/api/types.js';
import { assertRequestId } from '../src/api/keys.js';
import type { ReadOptions, WriteOptions } from '../src/store/index.js';
import { readBody } from './body.js';
import { pathAfter, type AppEnv, type HttpContext } from './context.js';
import { Params } from './params.js';

/** Parameters of a read of a value, and of a read of the history (?history); a GET takes one set or the other. */
const VALUE_PARAMS = ['version', 'at', 'stable', 'consistency', 'wait_ms'] as const;
const HISTORY_PARAMS = ['from', 'to', 'limit', 'cursor'] as const;
const READ_PARAMS = [...VALUE_PARAMS, 'history', ...HISTORY_PARAMS] as const;

/** PUT / GET / HEAD / DELETE /v1/objects/{key}, and ?history. */
export function objectRoutes(app: Hono<AppEnv>, ctx: HttpContext): void {
  const { store } = ctx;

  app.put('/v1/objects/*', async (c) => {
    const key = pathAfter(c, '/v1/objects', 'key');
    new Params(c.req.url, []);
    const incoming = c.env.incoming;
    const options = writeOptions(incoming.headers, store.limits.requestIdBytesMax);
    store.route(key, true); // bad key / unknown pool answered before the body is read
    const ct = incoming.headers['content-type'];
    if (ct !== undefined) options.contentType = ct;
    const value = await readBody(incoming, store.limits.valueBytesMax, 'value');
    const result = await store.put(key, value, options);
    return c.json(result, 200, { etag: `"${result.version}"` });
  });

  app.delete('/v1/objects/*', async (c) => {
    const key = pathAfter(c, '/v1/objects', 'key');
    new Params(c.req.url, []);
    const result = await store.delete(key, writeOptions(c.env.incoming.headers, store.limits.requestIdBytesMax));
    return c.json(result, 200, { etag: `"${result.version}"` });
  });

  app.on(['GET', 'HEAD'], '/v1/objects/*', async (c) => {
    const key = pathAfter(c, '/v1/objects', 'key');
    const p = new Params(c.req.url, READ_PARAMS);
    if (p.flag('history')) {
      if (c.req.method === 'HEAD') throw new SquallError('bad_parameter', 'history is read with GET');
      p.refuse(VALUE_PARAMS, 'reads a value, not the history: drop it or drop ?history');
      // `cursor` is the `next` of the previous page (where that page stopped); it overrides `from`
      const from = p.version('cursor') ?? p.version('from');
      const to = p.version('to');
      const limit = p.integer('limit', 1, store.limits.pageLimitMax);
      const page = await store.history(key, { ...(from !== undefined && { from }), ...(to !== undefined && { to }), ...(limit !== undefined && { limit }) });
      return c.json({ key, versions: page.versions, next: page.next });
    }
    p.refuse(HISTORY_PARAMS, 'belongs to ?history');
    const r = await store.get(key, readOptions(p));
    const headers: Record<string, string> = {
      'content-type': r.contentType,
      etag: `"${r.version}"`,
      [HEADER.version]: String(r.version),
      [HEADER.timestampUs]: String(r.timestampUs),
      // always sent; 'null' on a key's first version, as the JSON write results say it
      [HEADER.previousVersionByKey]: r.previousVersionByKey >= 0 ? String(r.previousVersionByKey) : 'null',
    };
    if (c.req.method === 'HEAD') {
      headers['content-length'] = String(r.value.byteLength);
      return c.body(null, 200, headers);
    }
    return c.body(r.value as Uint8Array<ArrayBuffer>, 200, headers);
  });
}

export function readOptions(p: Params): ReadOptions {
  const o: ReadOptions = {};
  const version = p.version('version');
  const at = p.timeUs('at');
  const stable = p.boolean('stable');
  const waitMs = p.integer('wait_ms', 0, Number.MAX_SAFE_INTEGER);
  const consistency = p.string('consistency');
  if (version !== undefined) o.version = version;
  if (at !== undefined) o.atUs = at;
  if (stable !== undefined) o.stable = stable;
  if (waitMs !== undefined) o.waitMs = waitMs;
  if (consistency !== undefined) {
    if (consistency !== 'linearizable') throw new SquallError('bad_parameter', `consistency '${consistency}' is not 'linearizable'`, { parameter: 'consistency' });
    o.linearizable = true;
  }
  return o;
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** If-Match, If-None-Match, Squall-Durability, Squall-Request-Id (of 1 to `requestIdBytesMax` bytes). */
export function writeOptions(headers: Record<string, string | string[] | undefined>, requestIdBytesMax: number): WriteOptions {
  const o: WriteOptions = {};
  const ifMatch = header(headers, 'if-match');
  if (ifMatch !== undefined) {
    const m = /^\s*(?:W\/)?"?(\d{1,16})"?\s*$/.exec(ifMatch);
    if (!m || !Number.isSafeInteger(Number(m[1]))) throw new SquallError('bad_parameter', `If-Match '${ifMatch}' is not a version`, { header: 'If-Match' });
    o.ifMatch = Number(m[1]);
  }
  const ifNoneMatch = header(headers, 'if-none-match');
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() !== '*') throw new SquallError('bad_parameter', `If-None-Match supports only '*'`, { header: 'If-None-Match' });
    o.ifNoneMatch = true;
  }
  const durability = header(headers, HEADER.durability);
  if (durability !== undefined) {
    if (durability !== 'delivered' && durability !== 'persisted') {
      throw new SquallError('bad_parameter', `Squall-Durability '${durability}' is not delivered or persisted`, { header: 'Squall-Durability' });
    }
    o.durability = durability as Durability;
  }
  const requestId = header(headers, HEADER.requestId);
  if (requestId !== undefined) {
    assertRequestId(requestId, requestIdBytesMax);
    o.requestId = requestId;
  }
  return o;
}
