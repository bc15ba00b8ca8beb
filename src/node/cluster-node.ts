import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { SquallError } from '../api/errors.js';
import type { ClusterInfo, SubgroupInfo } from '../api/types.js';
import { createLogger, type Logger } from '../log.js';
import { NodeStorage } from '../persist/node-storage.js';
import { LmdbTransportStorage } from '../persist/transport-storage.js';
import { stateTransferHooks, Store } from '../store/index.js';
import { wallClockUs } from '../transport/clock.js';
import { shardNames } from '../transport/layout.js';
import { GroupMember } from '../transport/member.js';
import type { StateTransferHooks } from '../transport/storage.js';
import { TcpDriver } from '../transport/tcp-driver.js';
import { createTransportDriver, parseTransport } from '../transport/transport-choice.js';
import { groupConfigOf, parseClusterConfig, type ClusterConfig } from './cluster-config.js';
import { parseNodeConfig, type NodeConfigInput } from './config.js';
import { DataDirLock } from './data-dir-lock.js';
import { serveHttp } from './http-server.js';
import type { RunningNode } from './node.js';
import { shardInfo } from './node.js';
import { P2PRemote } from './p2p-remote.js';

export interface ClusterNodeOptions {
  id: number;
  cluster: unknown;
  source: string;
  dataDir?: string;
  port?: number;
  host?: string;
  config?: NodeConfigInput;
  logger?: Logger;
}

/**
 * Member `id` of a cluster: the store's shards are the group's replicated shards (ordered multicast over
 * TCP); views, ragged trims and shard ends are kept in LMDB; state transfer moves shard history between
 * members; calls about shards this member does not order are forwarded to one that does. While this
 * member is not in an installed view, or sits in a minority, data requests answer 503.
 */
export async function startClusterNode(o: ClusterNodeOptions): Promise<RunningNode> {
  const cluster = parseClusterConfig(o.cluster, o.source);
  const me = cluster.members.find((m) => m.id === o.id);
  if (!me) throw new Error(`member ${o.id} is not in ${o.source} (members: ${cluster.members.map((m) => m.id).join(', ')})`);
  const groupConfig = groupConfigOf(cluster);
  const config = parseNodeConfig(
    {
      ...(o.config ?? {}),
      nodeId: o.id,
      host: o.host ?? me.httpHost ?? me.host,
      port: o.port ?? me.httpPort,
      dataDir: o.dataDir ?? join('data', `node-${o.id}`),
      layout: {
        persistent: cluster.layout.persistent.map((s) => ({ shards: s.shards })),
        volatile: cluster.layout.volatile.map((s) => ({ shards: s.shards })),
      },
    },
    `member ${o.id} of ${o.source}`,
  );
  const logger = (o.logger ?? createLogger({ node: o.id })).child({ cluster: cluster.name });

  const lock = DataDirLock.acquire(config.dataDir);
  let storage: NodeStorage | null = null;
  let store: Store | null = null;
  let member: GroupMember | null = null;
  try {
    const names = shardNames(groupConfig.layout.subgroups);
    storage = NodeStorage.open({ path: join(config.dataDir, 'lmdb'), databasesMax: 4 * names.length + 16 });
    const openedStorage = storage;
    let hooks: StateTransferHooks | null = null;
    const lazyHooks: StateTransferHooks = {
      logTail: (...a) => hooks!.logTail(...a),
      stateAt: (...a) => hooks!.stateAt(...a),
      install: (...a) => hooks!.install(...a),
    };
    let gateError: SquallError | null = new SquallError('unavailable', 'this member is not in an installed view yet', {}, 1);
    let poolsDeclared = false;
    const tcpDriver = (): TcpDriver =>
      new TcpDriver({
        selfId: o.id,
        incarnation: randomInt(1, 2 ** 31),
        groupName: cluster.name,
        listenHost: me.host,
        listenPort: me.port,
        log: logger,
      });
    const driver = createTransportDriver(parseTransport(cluster.transport), { selfId: o.id, tcpDriver, log: logger });
    member = new GroupMember({
      config: groupConfig,
      selfId: o.id,
      driver,
      storage: new LmdbTransportStorage(openedStorage, names),
      stateTransfer: lazyHooks,
      log: logger,
      events: {
        view: (e) => {
          gateError = null;
          if (!poolsDeclared && cluster.pools.length > 0) {
            poolsDeclared = true;
            void declarePools(store!, cluster, logger);
          }
        },
        stopped: (kind, reason) => {
          gateError =
            kind === 'minority'
              ? new SquallError('no_quorum', `this member is in a minority and stopped serving writes: ${reason}`, {}, 2)
              : new SquallError('view_change', `this member left the group (${reason}); it rejoins`, {}, 2);
          logger.warn({ kind, reason }, 'member stopped');
        },
        fatal: (e) => {
          gateError = new SquallError('unavailable', `this member stopped after a fatal error: ${e.message}`, {}, 5);
          logger.error({ err: e }, 'member failed');
        },
      },
    });
    const openedMember = member;
    openedStorage.onFailure((e) => {
      logger.error({ err: e, dataDir: config.dataDir }, 'storage failed: this member stops (as a crash) so the others go on without it; restart it once the disk is fixed');
      openedMember.crash(e);
    });
    const remote = new P2PRemote(openedMember, groupConfig.p2pTimeoutMs, logger);
    store = new Store({
      nodeId: o.id,
      layout: config.layout,
      limits: config.limits,
      storage: openedStorage,
      clock: wallClockUs,
      logger,
      openChannel: (name) => openedMember.shard(name),
      remote,
    });
    const openedStore = store;
    hooks = stateTransferHooks(openedStore);
    remote.serve(openedStore);
    await openedMember.start();
    const http = await serveHttp(
      openedStore,
      config.http,
      config.host,
      config.port,
      () => clusterInfo(cluster, openedMember, openedStore),
      logger,
      () => gateError,
    );
    logger.info({ url: http.url, group: `${me.host}:${me.port}`, dataDir: config.dataDir }, 'squall member serving');

    let closing: Promise<void> | null = null;
    const close = (): Promise<void> =>
      (closing ??= (async () => {
        logger.info('squall member stopping');
        await http.close();
        await openedMember.close();
        await openedStore.close();
        await openedStorage.close();
        lock.release();
        logger.info('squall member stopped');
      })());
    return { url: http.url, port: http.port, config, store: openedStore, close };
  } catch (e) {
    await member?.close();
    await store?.close();
    await storage?.close();
    lock.release();
    throw e;
  }
}

async function declarePools(store: Store, cluster: ClusterConfig, logger: Logger): Promise<void> {
  for (const p of cluster.pools) {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        await store.createPool(p.path, { type: p.type, ...(p.subgroup !== undefined ? { subgroup: p.subgroup } : {}), ...(p.affinity ? { affinity: p.affinity } : {}), ...(p.retain ? { retain: p.retain } : {}) });
        break;
      } catch (e) {
        if (e instanceof SquallError && e.status < 500) {
          logger.warn({ pool: p.path, err: e.message }, 'pool declared in the cluster file was not created');
          break;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }
}

function clusterInfo(cluster: ClusterConfig, member: GroupMember, store: Store): ClusterInfo {
  const view = member.view;
  const inView = new Set(view?.members.map((m) => m.id) ?? []);
  const membersOf = (name: string): number[] => [...(view?.shards.find((s) => s.name === name)?.members ?? [])];
  const info = (s: Store['allShards'][number] | Store['metadata'], index: number) => {
    const i = shardInfo(s, index, membersOf(s.name));
    // frontiers of a shard ordered elsewhere are not known here
    return s.serving ? i : { ...i, delivered_version: null, persisted_frontier: null, stability_frontier_us: 0 };
  };
  const subgroups: SubgroupInfo[] = [{ type: 'metadata', subgroup: 0, shards: [info(store.metadata, 0)] }];
  for (const type of ['persistent', 'volatile'] as const) {
    store.shards[type].forEach((shards, subgroup) => subgroups.push({ type, subgroup, shards: shards.map((s) => info(s, s.info.index)) }));
  }
  return {
    view: view?.vid ?? -1,
    members: cluster.members.map((m) => ({
      id: m.id,
      address: `${m.host}:${m.port}`,
      http: `http://${m.httpHost ?? m.host}:${m.httpPort}`,
      status: inView.has(m.id) ? 'up' : 'down',
    })),
    subgroups,
    leader: view?.members[0]?.id ?? -1,
  };
}
