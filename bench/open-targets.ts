import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { LocalCluster } from '../src/node/local-cluster.js';
import type { PeerKind } from '../scripts/peers/state.js';
import { acquirePeers } from './peers-env.js';
import type { KvTarget } from './target.js';
import { resolveTargets, type TargetEnv } from './targets/registry.js';

/** Targets opened for a bench run, with the peers they need found running or started. */
export interface OpenedTargets {
  targets: KvTarget[];
  peersOrigin: string;
  /** Closes the targets and stops the peers this run started; safe to call twice. */
  close(): Promise<void>;
}

export interface OpenTargetsOptions {
  names: readonly string[];
  /** A running Squall node; absent: a local cluster of clusterSize members is started for the run. */
  squallUrl?: string;
  /** Members of the cluster started for the run write V8 CPU profiles there. */
  profileDir?: string;
  peersDir: string;
  /** Most operations in flight at once (connection pool sizes). */
  concurrency: number;
  /** Copies of the data each system keeps (Squall replicas, etcd members, Redis primary + replicas). */
  clusterSize: number;
  log: (line: string) => void;
}

/**
 * Resolves the names in the registry, finds or starts the peer systems they need, creates and opens each
 * target. Ctrl-C or SIGTERM during the run still stops the peers it started (by pid).
 */
export async function openTargets(o: OpenTargetsOptions): Promise<OpenedTargets> {
  const entries = resolveTargets(o.names);
  const kinds = [...new Set(entries.flatMap(([, e]) => (e.needs ? [e.needs] : [])))] as PeerKind[];
  const peers = await acquirePeers(kinds, o.peersDir, o.log, o.clusterSize);
  const targets: KvTarget[] = [];
  let squall: OwnSquall | null = null;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await Promise.allSettled(targets.map((t) => t.close()));
    await Promise.allSettled([peers.release(), squall?.stop()]);
  };
  const onSignal = () => {
    void close().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    let squallUrl = o.squallUrl;
    if (squallUrl === undefined && entries.some(([, e]) => e.squall)) {
      squall = await startOwnSquall(o.clusterSize, o.log, o.profileDir);
      squallUrl = squall.url;
    }
    const env: TargetEnv = { squallUrl: squallUrl ?? 'http://127.0.0.1:8080', clusterSize: o.clusterSize, peers: peers.state };
    for (const [, entry] of entries) {
      const target = entry.create(env);
      await target.open({ concurrency: o.concurrency });
      targets.push(target);
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { targets, peersOrigin: peers.origin, close };
}

interface OwnSquall {
  url: string;
  stop(): Promise<void>;
}

/** A local Squall cluster for one run (every member holds every shard: replicas = members), removed after. */
async function startOwnSquall(members: number, log: (line: string) => void, profileDir?: string): Promise<OwnSquall> {
  const dir = mkdtempSync(join(tmpdir(), 'squall-bench-'));
  const cluster = await LocalCluster.plan({ dataDir: dir, nodes: members, shards: 2, replicas: members, stdio: 'file',
    env: { SQUALL_LOG_LEVEL: 'warn' },
    ...(profileDir !== undefined ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${resolve(profileDir)}`] } : {}),
  });
  const stop = async (): Promise<void> => {
    await cluster.stopAll().catch(() => cluster.killAll());
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await cluster.startAll();
    await cluster.waitReady();
  } catch (e) {
    await cluster.killAll();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const url = cluster.members.get(1)!.url;
  log(`squall: started a local cluster of ${members} member(s), 2 shards × ${members} replicas (${[...cluster.members.values()].map((m) => m.url).join(', ')}; logs in ${dir})`);
  if (profileDir !== undefined) log(`squall: members write CPU profiles to ${resolve(profileDir)} when the run ends (open them in Chrome DevTools)`);
  return { url, stop };
}
