import type { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { SquallError } from '../src/api/errors.js';
import type { WatchPosition } from '../src/store/index.js';
import type { AppEnv, HttpContext } from './context.js';
import { Params } from './params.js';

const KEEPALIVE_MS = 15_000;

/**
 * GET /v1/watch?prefix=/p/[&from_version=V] as server-sent events, one per change:
 * `id: <shard>:<version>`, `data: {"key","version","timestamp_us","op","size","shard"}`. Resumes after
 * the event named by Last-Event-ID. A watcher that falls too far behind gets `event: error` and is closed
 * (reconnect with Last-Event-ID to continue without loss).
 */
export function watchRoutes(app: Hono<AppEnv>, ctx: HttpContext): void {
  const hub = ctx.store.watch;
  app.get('/v1/watch', async (c) => {
    const p = new Params(c.req.url, ['prefix', 'from_version']);
    const prefix = p.string('prefix') ?? '/';
    if (!prefix.startsWith('/')) throw new SquallError('bad_parameter', `prefix '${prefix}' must start with '/'`, { parameter: 'prefix' });
    const fromVersion = p.version('from_version');
    const lastEventId = c.req.header('last-event-id');
    let position: WatchPosition | null = null;
    if (lastEventId !== undefined && lastEventId !== '') position = await hub.positionFromEventId(lastEventId);
    else if (fromVersion !== undefined) position = hub.positionFromVersion(fromVersion);
    const watcher = hub.subscribe(prefix, position);
    return streamSSE(
      c,
      async (stream) => {
        stream.onAbort(() => watcher.close());
        const keepalive = setInterval(() => void stream.write(': keepalive\n\n').catch(() => watcher.close()), KEEPALIVE_MS);
        try {
          await stream.write(': watching\n\n'); // flush headers so clients know the stream is open
          for await (const e of watcher) {
            await stream.writeSSE({
              id: e.id,
              data: JSON.stringify({ key: e.key, version: e.version, timestamp_us: e.timestamp_us, op: e.op, size: e.size, shard: e.shard }),
            });
          }
        } finally {
          clearInterval(keepalive);
          watcher.close();
        }
      },
      async (e, stream) => {
        const body = e instanceof SquallError ? e.toBody() : { error: { code: 'internal', message: e.message } };
        if (!(e instanceof SquallError)) ctx.logger.error({ err: e }, 'watch stream failed');
        await stream.writeSSE({ event: 'error', data: JSON.stringify(body) });
      },
    );
  });
}
