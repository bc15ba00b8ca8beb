import { Hono, type Context } from 'hono';
import { SquallError } from '../src/api/errors.js';
import { HEADER } from '../src/api/types.js';
import { batchRoutes } from './batch.js';
import { dotSegmentError, requestPath, type AppEnv, type HttpContext } from './context.js';
import { dashboardRoutes } from './dashboard.js';
import { objectRoutes } from './objects.js';
import { poolRoutes } from './pools.js';
import { watchRoutes } from './watch.js';

/**
 * The HTTP API of API.md as one hono app: routes map to store calls, input is validated at the edge, and
 * every error leaves in one JSON shape, {"error":{"code","message",...details}}, with its status.
 */
export function createApp(ctx: HttpContext): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const { metrics } = ctx;

  // one middleware for every request (metrics, and dot segments refused before routing): it is on the hot path
  app.use(async (c, next) => {
    const start = performance.now();
    const path = requestPath(c);
    const refused = dotSegmentError(path);
    if (refused) c.res = errorResponse(c, refused);
    else await next();
    const route = routeOf(path);
    metrics.requests.inc({ method: c.req.method, route, status: String(c.res.status) });
    metrics.latency.observe({ route }, (performance.now() - start) / 1000);
  });

  if (ctx.gate) {
    const gate = ctx.gate;
    app.use('/v1/*', async (c, next) => {
      const closed = gate();
      if (closed && !c.req.path.startsWith('/v1/cluster')) throw closed;
      await next();
    });
  }

  objectRoutes(app, ctx);
  poolRoutes(app, ctx);
  batchRoutes(app, ctx);
  watchRoutes(app, ctx);
  dashboardRoutes(app, metrics);

  app.get('/v1/cluster', (c) => c.json(ctx.cluster()));
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', (c) => {
    const why = ctx.store.notReady;
    const closed = ctx.gate?.() ?? (why === null ? null : new SquallError('unavailable', `the node is not ready: ${why}`, {}, 5));
    if (!closed) return c.json({ status: 'ready' });
    throw closed;
  });
  app.get('/metrics', async (c) => c.body(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }));

  app.notFound((c) => {
    const path = requestPath(c);
    const allow = allowedMethods(app, c.req.path);
    if (allow.length > 0) {
      const e = new SquallError('method_not_allowed', `${path} does not take ${c.req.method}; it takes ${allow.join(', ')} (see API.md)`, { allow });
      return c.json(e.toBody(), 405, { [HEADER.errorCode]: e.code, allow: allow.join(', ') });
    }
    const e = new SquallError('route_not_found', `no route ${c.req.method} ${path}; see API.md`);
    return c.json(e.toBody(), 404, { [HEADER.errorCode]: e.code });
  });

  app.onError((err, c) => {
    if (err instanceof SquallError) return errorResponse(c, err);
    ctx.logger.error({ err, method: c.req.method, url: c.req.url }, 'request failed');
    return c.json(new SquallError('internal', `internal error: ${(err as Error).message}`).toBody(), 500, { [HEADER.errorCode]: 'internal' });
  });
  return app;
}

/** A SquallError in the API's JSON shape, with its status and headers. */
function errorResponse(c: Context<AppEnv>, err: SquallError): Response {
  const headers: Record<string, string> = { [HEADER.errorCode]: err.code };
  if (err.retryAfterS !== undefined) headers['retry-after'] = String(err.retryAfterS);
  if (err.code === 'deleted' && typeof err.details.version === 'number') headers[HEADER.version] = String(err.details.version);
  if (c.req.method === 'HEAD') return c.body(null, err.status as 404, headers);
  return c.json(err.toBody(), err.status as 400, headers);
}

/** The methods an Allow header can list, in the order it lists them. */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;

/**
 * The methods some route of `app` answers on `path` (the router's path), asked of the app's own router so
 * the routes stay declared once. Middleware (method ALL) is no route; every GET route also answers HEAD.
 */
function allowedMethods(app: Hono<AppEnv>, path: string): string[] {
  const routed = (method: string): boolean => app.router.match(method, path)[0].some(([[, route]]) => route.method !== 'ALL');
  return METHODS.filter((m) => routed(m === 'HEAD' ? 'GET' : m));
}

const ROUTES = new Set(['/v1/batch', '/v1/watch', '/v1/cluster', '/healthz', '/readyz', '/metrics']);

/** A bounded set of route labels for metrics (never a raw path: that would grow without bound). */
function routeOf(path: string): string {
  if (path.startsWith('/v1/objects/')) return 'objects';
  if (path.startsWith('/v1/pools')) return path.endsWith('/keys') ? 'keys' : 'pools';
  if (path === '/' || path === '/dashboard' || path.startsWith('/dashboard/')) return 'dashboard';
  return ROUTES.has(path) ? path.slice(path.lastIndexOf('/') + 1) : 'other';
}
