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
  squallUrl: string;
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
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await Promise.allSettled(targets.map((t) => t.close()));
    await peers.release();
  };
  const onSignal = () => {
    void close().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const env: TargetEnv = { squallUrl: o.squallUrl, clusterSize: o.clusterSize, peers: peers.state };
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
