import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import { SquallError } from '../src/api/errors.js';
import type { ClusterInfo } from '../src/api/types.js';
import type { Logger } from '../src/log.js';
import type { Store } from '../src/store/index.js';
import type { Metrics } from './metrics.js';

/** What the HTTP layer needs from the node: the store and a view of the cluster. */
export interface HttpContext {
  store: Store;
  cluster(): ClusterInfo;
  metrics: Metrics;
  logger: Logger;
  /** When it returns an error, data requests answer it (e.g. 503 no_quorum while the member is in a minority). */
  gate?: () => Error | null;
}

export type AppEnv = { Bindings: HttpBindings };

/**
 * The path of the request exactly as its request line gave it, without the query. Never `c.req.url`: the
 * adapter builds that with `new URL()`, which removes dot segments (`/v1/objects/p/../x/k` becomes
 * `/v1/objects/x/k`), so keys and pool paths are read only from here.
 */
export function requestPath(c: Context<AppEnv>): string {
  let target = c.env.incoming.url ?? '/';
  if (target.charCodeAt(0) !== 0x2f) {
    // absolute form (`PUT http://host/v1/...`): the path starts at the first '/' after the authority
    const slash = target.indexOf('/', target.indexOf('//') + 2);
    target = slash < 0 ? '/' : target.slice(slash);
  }
  // (indexOf, not a regex: this runs for every request)
  let end = target.indexOf('?');
  const hash = target.indexOf('#');
  if (hash >= 0 && (end < 0 || hash < end)) end = hash;
  return end < 0 ? target : target.slice(0, end);
}

/**
 * The decoded key or pool path after `prefix` (e.g. '/v1/objects') in the request as sent; 400 bad_key when
 * it is not valid percent-encoded UTF-8. (The store checks what makes a valid key or pool path.)
 */
export function pathAfter(c: Context<AppEnv>, prefix: string, what: 'key' | 'pool'): string {
  const path = requestPath(c);
  const raw = path.startsWith(prefix) ? path.slice(prefix.length) : '';
  try {
    return decodeURIComponent(raw);
  } catch {
    const name = what === 'key' ? 'key' : 'pool path';
    throw new SquallError('bad_key', `${name} '${raw}' is not valid percent-encoded UTF-8`, { [what]: raw });
  }
}

/** A '.' or '..' segment, literal or percent-encoded in any case. */
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?=\/|$)/i;

/**
 * The 400 bad_key for a request path with a '.' or '..' segment (null for any other path), checked before
 * routing: the router sees the normalized path, so `/v1/objects/../pools/zz` would otherwise reach the pool
 * routes. No key or pool path has such a segment (API.md), and no other route does either.
 */
export function dotSegmentError(path: string): SquallError | null {
  if (path.indexOf('.') < 0 && path.indexOf('%2') < 0) return null; // the usual path: no regex
  const m = DOT_SEGMENT.exec(path);
  if (!m) return null;
  const segment = m[0].replace(/^\//, '');
  return new SquallError('bad_key', `path '${path}' has a '${segment}' segment; keys and pool paths have no '.' or '..' segment`, { path });
}
