import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isOurs } from './process.js';
import { startEtcd, stopEtcd, type EtcdCluster, type EtcdStartOptions } from './etcd.js';
import { startRedis, stopRedis, type RedisGroup, type RedisStartOptions } from './redis.js';

/**
 * What `peers start` started, written to <baseDir>/state.json so that `peers stop` (another process, later)
 * stops exactly those pids, and the bench can find running peers.
 */
export interface PeersState {
  baseDir: string;
  startedAt: string;
  etcd?: EtcdCluster;
  redis?: RedisGroup;
}

/** Default base directory for peer data, logs and the state file: <repo>/.peers (git-ignored). */
export const defaultPeersDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '.peers');

export function stateFile(baseDir: string): string {
  return join(baseDir, 'state.json');
}

export function readState(baseDir: string): PeersState | null {
  const file = stateFile(baseDir);
  if (!existsSync(file)) return null;
  return JSON.parse(readFileSync(file, 'utf8')) as PeersState;
}

export function writeState(state: PeersState): void {
  mkdirSync(state.baseDir, { recursive: true });
  const file = stateFile(state.baseDir);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

export type PeerKind = 'etcd' | 'redis';

export interface StartPeersOptions {
  baseDir: string;
  kinds: readonly PeerKind[];
  etcd?: Omit<EtcdStartOptions, 'baseDir'>;
  redis?: Omit<RedisStartOptions, 'baseDir'>;
  /** Write the state file (the CLI does; an in-process bench or test may keep the state to itself). */
  persist?: boolean;
}

/** Starts the asked-for peers; on failure stops whatever of them did start. */
export async function startPeers(options: StartPeersOptions): Promise<PeersState> {
  const state: PeersState = { baseDir: options.baseDir, startedAt: new Date().toISOString() };
  try {
    if (options.kinds.includes('etcd')) state.etcd = await startEtcd({ ...options.etcd, baseDir: options.baseDir });
    if (options.kinds.includes('redis')) state.redis = await startRedis({ ...options.redis, baseDir: options.baseDir });
  } catch (err) {
    await stopPeers(state);
    throw err;
  }
  if (options.persist) writeState(state);
  return state;
}

/** Stops, by pid, everything the state lists, removes their data (unless keepData) and the state file. */
export async function stopPeers(state: PeersState, keepData = false): Promise<void> {
  await Promise.all([state.etcd && stopEtcd(state.etcd, keepData), state.redis && stopRedis(state.redis, keepData)]);
  rmSync(stateFile(state.baseDir), { force: true });
}

export interface PeerStatus {
  name: string;
  pid: number;
  port: number;
  running: boolean;
}

export function peersStatus(state: PeersState): PeerStatus[] {
  const out: PeerStatus[] = [];
  for (const m of state.etcd?.members ?? []) out.push({ name: `etcd ${m.name}`, pid: m.pid, port: m.clientPort, running: isOurs(m) });
  if (state.redis) {
    const { primary, replicas } = state.redis;
    out.push({ name: 'redis primary', pid: primary.pid, port: primary.port, running: isOurs(primary) });
    replicas.forEach((r, i) => out.push({ name: `redis replica${i + 1}`, pid: r.pid, port: r.port, running: isOurs(r) }));
  }
  return out;
}
