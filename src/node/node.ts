import { join } from 'node:path';
import type { ClusterInfo, SubgroupInfo } from '../api/types.js';
import { createLogger, type Logger } from '../log.js';
import { NodeStorage } from '../persist/node-storage.js';
import { Store, type ObjectShardRef } from '../store/index.js';
import { wallClockUs } from '../transport/clock.js';
import { LocalSequencer } from '../transport/local-sequencer.js';
import { startClusterNode } from './cluster-node.js';
import { isClusterConfig } from './cluster-config.js';
import { loadConfigFile, parseNodeConfig, type NodeConfig, type NodeConfigInput } from './config.js';
import { DataDirLock } from './data-dir-lock.js';
import { serveHttp } from './http-server.js';

export interface StartOptions {
  dataDir?: string;
  port?: number;
  host?: string;
  /** A JSON file: a node configuration, or a cluster file (then `id` names this member). */
  configFile?: string;
  /** With a cluster file: this member's id. */
  id?: number;
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
 * One Squall process. With a node configuration (or none) it is a single node: every shard is a
 * one-member shard sequenced locally. With a cluster file it is member `id` of a cluster (cluster-node.ts).
 * Either way: validate the configuration, lock the data directory, recover every shard from LMDB alone,
 * then serve the HTTP API.
 */
export async function startNode(options: StartOptions = {}): Promise<RunningNode> {
  const fromFile = options.configFile ? loadConfigFile(options.configFile) : {};
  if (isClusterConfig(fromFile)) {
    if (options.id === undefined) throw new Error(`${options.configFile} is a cluster file: pass --id with this member's id`);
    return startClusterNode({ ...options, id: options.id, cluster: fromFile, source: options.configFile! });
  }
  if (options.id !== undefined) {
    throw new Error(`an id (${options.id}) names a member of a cluster, but ${options.configFile ?? 'no configuration file'} is not a cluster file (it has no members)`);
  }
  const merged: Record<string, unknown> = { ...(fromFile as Record<string, unknown>), ...(options.config ?? {}) };
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
    openedStorage.onFailure((e) => {
      log.error({ err: e, dataDir: config.dataDir }, 'storage failed: writes are refused until the node is restarted with the disk fixed; reads go on');
    });
    store = new Store({
      nodeId: config.nodeId,
      layout: config.layout,
      limits: config.limits,
      storage: openedStorage,
      clock: wallClockUs,
      logger: log,
      openChannel: (name, lastTimestampUs) =>
        new LocalSequencer({
          name,
          memberId: config.nodeId,
          view,
          clock: wallClockUs,
          lastTimestampUs,
          windowPayloads: config.limits.shardWindowOps,
          nextView: () => openedStorage.nextView(),
          onRolloverError: (e) => log.error({ shard: name, err: e }, 'could not reserve the next view for the sequence rollover; retrying on the next write'),
        }),
    });
    const openedStore = store;
    const http = await serveHttp(openedStore, config.http, config.host, config.port, (url) => singleNodeInfo(config, view, openedStore, url), log);
    log.info({ url: http.url, dataDir: config.dataDir, pools: openedStore.pools.list().length }, 'squall node serving');

    let closing: Promise<void> | null = null;
    const close = (): Promise<void> =>
      (closing ??= (async () => {
        log.info('squall node stopping');
        await http.close();
        await openedStore.close();
        await openedStorage.close();
        lock.release();
        log.info('squall node stopped');
      })());
    return { url: http.url, port: http.port, config, store: openedStore, close };
  } catch (e) {
    await store?.close();
    await storage?.close();
    lock.release();
    throw e;
  }
}

/** /v1/cluster of a shard as this member sees it. */
export function shardInfo(s: ObjectShardRef<unknown>, index: number, members: readonly number[]): SubgroupInfo['shards'][number] {
  const f = s.frontiers;
  return {
    shard: index,
    members: [...members],
    delivered_version: f.deliveredVersion < 0 ? null : f.deliveredVersion,
    persisted_frontier: f.persistedFrontier < 0 ? null : f.persistedFrontier,
    stability_frontier_us: f.stabilityFrontierUs,
  };
}

function singleNodeInfo(config: NodeConfig, view: number, store: Store, url: string): ClusterInfo {
  const subgroups: SubgroupInfo[] = [{ type: 'metadata', subgroup: 0, shards: [shardInfo(store.metadata, 0, store.metadata.channel.members)] }];
  for (const type of ['persistent', 'volatile'] as const) {
    store.shards[type].forEach((shards, subgroup) =>
      subgroups.push({ type, subgroup, shards: shards.map((s) => shardInfo(s, s.info.index, s.channel.members)) }),
    );
  }
  return { view, members: [{ id: config.nodeId, address: url, http: url, status: 'up' }], subgroups, leader: config.nodeId };
}
