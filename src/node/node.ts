import type { Server } from 'node:http';
import { join } from 'node:path';
import { createAdaptorServer } from '@hono/node-server';
import type { ClusterInfo, SubgroupInfo } from '../api/types.js';
import { createApp } from '../../http/app.js';
import { Metrics } from '../../http/metrics.js';
import { createLogger, type Logger } from '../log.js';
import { NodeStorage } from '../persist/node-storage.js';
import { Store, type ObjectShardRef } from '../store/index.js';
import { wallClockUs } from '../transport/clock.js';
import { LocalSequencer } from '../transport/local-sequencer.js';
import { loadConfigFile, parseNodeConfig, type NodeConfig, type NodeConfigInput } from './config.js';
import { DataDirLock } from './data-dir-lock.js';

export interface StartOptions {
  dataDir?: string;
  port?: number;
  host?: string;
  /** A JSON file with any NodeConfig fields; the options above override it. */
  configFile?: string;
  /** Further overrides (tests). */
  config?: NodeConfigInput;
  logger?: Logger;
}

export interface RunningNode {
  url: string;
  port: number;
  config: NodeConfig;
  store: Store;
  /** Stops serving, ends watch streams, waits for queued writes to be durable, closes LMDB. */
  close(): Promise<void>;
}

/**
 * One Squall process: reads and validates its configuration, opens LMDB under the data directory, starts
 * a new view, recovers every shard from LMDB alone, and serves the HTTP API. On a single node every shard
 * is a one-member shard sequenced locally.
 */
export async function startNode(options: StartOptions = {}): Promise<RunningNode> {
  const fromFile = options.configFile ? (loadConfigFile(options.configFile) as Record<string, unknown>) : {};
  const merged: Record<string, unknown> = { ...fromFile, ...(options.config ?? {}) };
  if (options.dataDir !== undefined) merged.dataDir = options.dataDir;
  if (options.port !== undefined) merged.port = options.port;
  if (options.host !== undefined) merged.host = options.host;
  const config = parseNodeConfig(merged, options.configFile ? `config ${options.configFile}` : 'configuration');
  const logger = options.logger ?? createLogger({ node: config.nodeId });

  const lock = DataDirLock.acquire(config.dataDir);
  let storage: NodeStorage | null = null;
  let store: Store | null = null;
  try {
    const shardCount = [...config.layout.persistent, ...config.layout.volatile].reduce((n, sg) => n + sg.shards, 0);
    storage = NodeStorage.open({ path: join(config.dataDir, 'lmdb'), databasesMax: 4 * shardCount + 16 });
    const view = await storage.nextView();
    const log = logger.child({ view });
    const openedStorage = storage;
    store = new Store({
      nodeId: config.nodeId,
      layout: config.layout,
      limits: config.limits,
      storage: openedStorage,
      clock: wallClockUs,
      logger: log,
      openChannel: (name, lastTimestampUs) =>
        new LocalSequencer({ name, memberId: config.nodeId, view, clock: wallClockUs, lastTimestampUs, windowPayloads: config.limits.shardWindowOps }),
    });
    const openedStore = store;
    const metrics = new Metrics(openedStore);
    const server = createAdaptorServer({
      fetch: createApp({ store: openedStore, metrics, logger: log, cluster: () => clusterInfo(config, view, openedStore, url) }).fetch,
    }) as Server;
    server.keepAliveTimeout = config.http.keepAliveTimeoutMs;
    server.headersTimeout = config.http.headersTimeoutMs;
    server.requestTimeout = config.http.requestTimeoutMs;
    if (config.http.connectionsMax > 0) server.maxConnections = config.http.connectionsMax;
    const port = await listen(server, config.port, config.host);
    const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
    log.info({ url, dataDir: config.dataDir, pools: openedStore.pools.list().length }, 'squall node serving');

    let closing: Promise<void> | null = null;
    const close = (): Promise<void> =>
      (closing ??= (async () => {
        log.info('squall node stopping');
        const closed = new Promise<void>((r) => server.close(() => r()));
        openedStore.watch.close();
        server.closeIdleConnections();
        await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
        server.closeAllConnections();
        await openedStore.close();
        await openedStorage.close();
        lock.release();
        log.info('squall node stopped');
      })());
    return { url, port, config, store: openedStore, close };
  } catch (e) {
    await store?.close();
    await storage?.close();
    lock.release();
    throw e;
  }
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      reject(e.code === 'EADDRINUSE' ? new Error(`port ${port} on ${host} is in use: pass another --port (0 picks a free one)`) : e);
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}

function clusterInfo(config: NodeConfig, view: number, store: Store, url: string): ClusterInfo {
  const shardInfo = (s: ObjectShardRef<unknown>, index: number) => ({
    shard: index,
    members: [...s.channel.members],
    delivered_version: s.frontiers.deliveredVersion < 0 ? null : s.frontiers.deliveredVersion,
    persisted_frontier: s.frontiers.persistedFrontier < 0 ? null : s.frontiers.persistedFrontier,
    stability_frontier_us: s.frontiers.stabilityFrontierUs,
  });
  const subgroups: SubgroupInfo[] = [{ type: 'metadata', subgroup: 0, shards: [shardInfo(store.metadata, 0)] }];
  for (const type of ['persistent', 'volatile'] as const) {
    store.shards[type].forEach((shards, subgroup) => subgroups.push({ type, subgroup, shards: shards.map((s) => shardInfo(s, s.info.index)) }));
  }
  return {
    view,
    members: [{ id: config.nodeId, address: url, http: url, status: 'up' }],
    subgroups,
    leader: config.nodeId,
  };
}
