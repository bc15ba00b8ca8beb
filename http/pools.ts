import type { Hono } from 'hono';
import { z } from 'zod';
import { SquallError } from '../src/api/errors.js';
import { compileAffinity } from '../src/api/shard-hash.js';
import type { PoolSpec } from '../src/api/types.js';
import { poolInfo, type ListOptions } from '../src/store/index.js';
import { readBody } from './body.js';
import { pathAfter, type AppEnv, type HttpContext } from './context.js';
import { writeOptions } from './objects.js';
import { Params } from './params.js';

const SPEC_BYTES_MAX = 64 * 1024;
const POOL_ROUTE = '/v1/pools/:path{.*}';

const PoolSpecSchema = z
  .object({
    type: z.enum(['persistent', 'volatile']),
    subgroup: z.number().int().min(0).optional(),
    affinity: z.string().max(1024).nullable().optional(),
    retain: z
      .object({
        versions: z.number().int().min(1).optional(),
        seconds: z.number().int().min(1).optional(),
      })
      .strict()
      .nullable()
      .optional(),
  })
  .strict();

/**
 * /v1/pools: create, list, get, delete, and list a pool's keys. The routes with a pool path need the '/'
 * after /v1/pools, so /v1/pools itself takes only GET (the list) and other methods answer 405.
 */
export function poolRoutes(app: Hono<AppEnv>, ctx: HttpContext): void {
  const { store } = ctx;

  app.get('/v1/pools', (c) => {
    new Params(c.req.url, []);
    return c.json({ pools: store.pools.list().map(poolInfo) });
  });

  app.put(POOL_ROUTE, async (c) => {
    const path = pathAfter(c, '/v1/pools', 'pool');
    new Params(c.req.url, []);
    const body = await readBody(c.env.incoming, SPEC_BYTES_MAX, 'pool spec');
    const spec = parseSpec(body);
    const { created, pool } = await store.createPool(path, spec);
    return c.json(poolInfo(pool), created ? 201 : 200);
  });

  app.delete(POOL_ROUTE, async (c) => {
    const path = pathAfter(c, '/v1/pools', 'pool');
    new Params(c.req.url, []);
    const { requestId } = writeOptions(c.env.incoming.headers, store.limits.requestIdBytesMax);
    return c.json(poolInfo(await store.deletePool(path, requestId !== undefined ? { requestId } : {})));
  });

  app.get(POOL_ROUTE, async (c) => {
    const path = pathAfter(c, '/v1/pools', 'pool');
    // GET /v1/pools/{pool}/keys lists keys, unless a pool is itself named .../keys
    if (path.endsWith('/keys') && !store.pools.get(path)) {
      const poolPathOfKeys = path.slice(0, -'/keys'.length);
      const p = new Params(c.req.url, ['prefix', 'at', 'version', 'stable', 'limit', 'cursor', 'values', 'wait_ms']);
      const o: ListOptions = {};
      const set = <K extends keyof ListOptions>(k: K, v: ListOptions[K] | undefined): void => {
        if (v !== undefined) o[k] = v;
      };
      set('prefix', p.string('prefix'));
      set('atUs', p.timeUs('at'));
      set('version', p.version('version'));
      set('stable', p.boolean('stable'));
      set('limit', p.integer('limit', 1, store.limits.pageLimitMax));
      set('cursor', p.string('cursor'));
      set('values', p.boolean('values'));
      set('waitMs', p.integer('wait_ms', 0, store.limits.readWaitMsMax));
      return c.json(await store.listKeys(poolPathOfKeys, o));
    }
    new Params(c.req.url, []);
    return c.json(poolInfo(store.getPool(path)));
  });
}

function parseSpec(body: Buffer): PoolSpec {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw new SquallError('bad_body', 'pool spec is not JSON: send {"type":"persistent"|"volatile", "subgroup"?, "affinity"?, "retain"?}');
  }
  const r = PoolSpecSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new SquallError('bad_body', `pool spec: ${issue.path.join('.') || 'body'}: ${issue.message}`, { field: issue.path.join('.') });
  }
  const spec: PoolSpec = { type: r.data.type };
  if (r.data.subgroup !== undefined) spec.subgroup = r.data.subgroup;
  if (r.data.affinity) {
    try {
      compileAffinity(r.data.affinity);
    } catch (e) {
      throw new SquallError('bad_parameter', `affinity is not a valid regular expression: ${(e as Error).message}`, { field: 'affinity' });
    }
    spec.affinity = r.data.affinity;
  }
  if (r.data.retain && (r.data.retain.versions !== undefined || r.data.retain.seconds !== undefined)) {
    spec.retain = {};
    if (r.data.retain.versions !== undefined) spec.retain.versions = r.data.retain.versions;
    if (r.data.retain.seconds !== undefined) spec.retain.seconds = r.data.retain.seconds;
  }
  return spec;
}
