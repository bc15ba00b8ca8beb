import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { missingPeerPackages } from '../scripts/peers/install.js';
import { isOurs } from '../scripts/peers/process.js';
import { readState, startPeers, stopPeers, type PeerKind, type PeersState } from '../scripts/peers/state.js';

/**
 * The peer systems a bench run needs: the ones `npm run peers -- start` left running in peersDir when
 * they are all there, otherwise the bench starts its own in a temporary directory and stops them (by pid)
 * and removes that directory when done.
 */
export interface PeersEnv {
  state: PeersState;
  /** Where they came from, for the report. */
  origin: string;
  /** Stops what this run started (nothing when it found them running). */
  release(): Promise<void>;
}

export async function acquirePeers(kinds: readonly PeerKind[], peersDir: string, log: (line: string) => void): Promise<PeersEnv> {
  if (kinds.length === 0) return { state: { baseDir: '', startedAt: new Date().toISOString() }, origin: 'none needed', release: async () => {} };
  const recorded = readState(peersDir);
  if (recorded && kinds.every((k) => running(recorded, k))) {
    return { state: recorded, origin: `running, from ${peersDir}/state.json`, release: async () => {} };
  }
  const missing = missingPeerPackages();
  if (missing.length > 0) throw new Error(`peer servers not installed (${missing.join(', ')}): run 'npm run peers -- install'`);
  const baseDir = mkdtempSync(join(tmpdir(), 'squall-bench-peers-'));
  log(`starting ${kinds.join(' and ')} in ${baseDir}`);
  const state = await startPeers({ baseDir, kinds });
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

function running(state: PeersState, kind: PeerKind): boolean {
  if (kind === 'etcd') return state.etcd !== undefined && state.etcd.members.every(isOurs);
  return state.redis !== undefined && [state.redis.primary, ...state.redis.replicas].every(isOurs);
}
