import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { missingPeerPackages } from '../scripts/peers/install.js';
import { isOurs } from '../scripts/peers/process.js';
import { readState, startPeers, stopPeers, type PeerKind, type PeersState } from '../scripts/peers/state.js';

/**
 * The peer systems a bench run needs, each keeping clusterSize copies of the data (etcd members; Redis
 * primary + replicas): the ones `npm run peers -- start` left running in peersDir when they are all there
 * at that size, otherwise the bench starts its own in a temporary directory and stops them (by pid)
 * and removes that directory when done.
 */
export interface PeersEnv {
  state: PeersState;
  /** Where they came from, for the report. */
  origin: string;
  /** Stops what this run started (nothing when it found them running). */
  release(): Promise<void>;
}

export async function acquirePeers(kinds: readonly PeerKind[], peersDir: string, log: (line: string) => void, clusterSize = 3): Promise<PeersEnv> {
  if (kinds.length === 0) return { state: { baseDir: '', startedAt: new Date().toISOString() }, origin: 'none needed', release: async () => {} };
  const recorded = readState(peersDir);
  if (recorded && kinds.every((k) => running(recorded, k))) {
    if (kinds.every((k) => replicasOf(recorded, k) === clusterSize)) {
      return { state: recorded, origin: `running, from ${peersDir}/state.json`, release: async () => {} };
    }
    log(`the peers running from ${peersDir} are not ${clusterSize} replicas each: starting others`);
  }
  const missing = missingPeerPackages();
  if (missing.length > 0) throw new Error(`peer servers not installed (${missing.join(', ')}): run 'npm run peers -- install'`);
  const baseDir = mkdtempSync(join(tmpdir(), 'squall-bench-peers-'));
  log(`starting ${kinds.join(' and ')} in ${baseDir}`);
  const state = await startPeers({ baseDir, kinds, etcd: { members: clusterSize }, redis: { replicas: clusterSize - 1 } });
  let released = false;
  return {
    state,
    origin: `started by this run in ${baseDir}`,
    release: async () => {
      if (released) return;
      released = true;
      await stopPeers(state);
      rmSync(baseDir, { recursive: true, force: true });
    },
  };
}

/** Copies of the data: etcd members, or the Redis primary plus its replicas. */
function replicasOf(state: PeersState, kind: PeerKind): number {
  return kind === 'etcd' ? (state.etcd?.members.length ?? 0) : 1 + (state.redis?.replicas.length ?? -1);
}

function running(state: PeersState, kind: PeerKind): boolean {
  if (kind === 'etcd') return state.etcd !== undefined && state.etcd.members.every(isOurs);
  return state.redis !== undefined && [state.redis.primary, ...state.redis.replicas].every(isOurs);
}
