import type { Hono } from 'hono';
import { SquallError } from '../src/api/errors.js';
import { HEADER, type Durability } from '../src/api/types.js';
import type { ReadOptions, WriteOptions } from '../src/store/index.js';
import { readBody } from './body.js';
import { pathAfter, type AppEnv, type HttpContext } from './context.js';
import { Params } from './params.js';

const READ_PARAMS = ['version', 'at', 'stable', 'consistency', 'wait_ms', 'history', 'from', 'to', 'limit', 'cursor'] as const;

/** PUT / GET / HEAD / DELETE /v1/objects/{key}, and ?history. */
export function objectRoutes(app: Hono<AppEnv>, ctx: HttpContext): void {
  const { store } = ctx;

  app.put('/v1/objects/*', async (c) => {
    const key = objectKey(c.req.url);
    new Params(c.req.url, []);
    const incoming = c.env.incoming;
    const options = writeOptions(incoming.headers);
    store.route(key, true); // bad key / unknown pool answered before the body is read
    const ct = incoming.headers['content-type'];
    if (ct !== undefined) options.contentType = ct;
    const value = await readBody(incoming, store.limits.valueBytesMax, 'value');
    const result = await store.put(key, value, options);
    return c.json(result, 200, { etag: `"${result.version}"` });
  });

  app.delete('/v1/objects/*', async (c) => {
    const key = objectKey(c.req.url);
    new Params(c.req.url, []);
    const result = await store.delete(key, writeOptions(c.env.incoming.headers));
    return c.json(result, 200, { etag: `"${result.version}"` });
  });

  app.on(['GET', 'HEAD'], '/v1/objects/*', async (c) => {
    const key = objectKey(c.req.url);
    const p = new Params(c.req.url, READ_PARAMS);
    if (p.has('history')) {
      if (c.req.method === 'HEAD') throw new SquallError('bad_parameter', 'history is read with GET');
      // `cursor` is the `next` of the previous page (where that page stopped); it overrides `from`
      const from = p.version('cursor') ?? p.version('from');
      const to = p.version('to');
      const limit = p.integer('limit', 1, store.limits.pageLimitMax);
      const page = await store.history(key, { ...(from !== undefined && { from }), ...(to !== undefined && { to }), ...(limit !== undefined && { limit }) });
      return c.json({ key, versions: page.versions, next: page.next });
    }
    for (const misplaced of ['from', 'to', 'limit', 'cursor']) {
      if (p.has(misplaced)) throw new SquallError('bad_parameter', `parameter ${misplaced} belongs to ?history`, { parameter: misplaced });
    }
    const r = await store.get(key, readOptions(p));
    const headers: Record<string, string> = {
      'content-type': r.contentType,
      etag: `"${r.version}"`,
      [HEADER.version]: String(r.version),
      [HEADER.timestampUs]: String(r.timestampUs),
    };
    if (r.previousVersionByKey >= 0) headers[HEADER.previousVersionByKey] = String(r.previousVersionByKey);
    if (c.req.method === 'HEAD') {
      headers['content-length'] = String(r.value.byteLength);
      return c.body(null, 200, headers);
    }
    return c.body(r.value as Uint8Array<ArrayBuffer>, 200, headers);
  });
}

function objectKey(url: string): string {
  const raw = pathAfter(url, '/v1/objects') ?? '';
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new SquallError('bad_key', `key '${raw}' is not valid percent-encoded UTF-8`, { key: raw });
  }
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

/** If-Match, If-None-Match, Squall-Durability, Squall-Request-Id. */
export function writeOptions(headers: Record<string, string | string[] | undefined>): WriteOptions {
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
  if (requestId !== undefined) o.requestId = requestId;
  return o;
}
