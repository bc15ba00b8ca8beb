import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import type { ClusterInfo } from '../api/types.js';
import { createApp } from '../../http/app.js';
import { holdContinue } from '../../http/body.js';
import { Metrics } from '../../http/metrics.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/index.js';
import type { NodeConfig } from './config.js';

export interface HttpServing {
  url: string;
  port: number;
  /** Stops accepting, ends watch streams, closes connections (bounded wait for requests in flight). */
  close(): Promise<void>;
}

/** Serves the HTTP API of a store on host:port (port 0: a free one). */
export async function serveHttp(
  store: Store,
  http: NodeConfig['http'],
  host: string,
  port: number,
  cluster: (url: string) => ClusterInfo,
  logger: Logger,
  gate?: () => Error | null,
): Promise<HttpServing> {
  const metrics = new Metrics(store);
  let url = '';
  const app = createApp({ store, metrics, logger, cluster: () => cluster(url), ...(gate ? { gate } : {}) });
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  server.keepAliveTimeout = http.keepAliveTimeoutMs;
  server.headersTimeout = http.headersTimeoutMs;
  server.requestTimeout = http.requestTimeoutMs;
  if (http.connectionsMax > 0) server.maxConnections = http.connectionsMax;
  // Expect: 100-continue is answered when the route reads the body after checking its size, not at once
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    holdContinue(req, res);
    server.emit('request', req, res);
  });
  const bound = await listen(server, port, host);
  url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}`;
  return {
    url,
    port: bound,
    close: async () => {
      const closed = new Promise<void>((r) => server.close(() => r()));
      store.watch.close();
      server.closeIdleConnections();
      await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
      server.closeAllConnections();
    },
  };
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      if (e.code === 'EADDRINUSE') reject(new Error(`port ${port} on ${host} is in use: pass another --port (0 picks a free one)`));
      else if (e.code === 'ENOTFOUND' || e.code === 'EADDRNOTAVAIL' || e.code === 'EAI_AGAIN') {
        reject(new Error(`cannot listen on host '${host}' (${e.code}): give --host an address of this machine, e.g. 127.0.0.1 or 0.0.0.0`));
      } else reject(e);
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}
