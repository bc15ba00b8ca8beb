import type { HttpBindings } from '@hono/node-server';
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

/** The decoded path of a request URL after `prefix` (e.g. '/v1/objects'), or null if it does not start with it. */
export function pathAfter(url: string, prefix: string): string | null {
  const start = url.indexOf('/', url.indexOf('//') + 2);
  const q = url.indexOf('?', start);
  const raw = url.slice(start, q < 0 ? undefined : q);
  if (!raw.startsWith(prefix)) return null;
  return raw.slice(prefix.length);
}
