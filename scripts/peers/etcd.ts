import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { freePorts } from '../../src/node/ports.js';
import { spawnDetached, stopProcess, waitFor, type StartedProcess } from './process.js';
import { logFileTail } from '../../src/log.js';

/**
 * A local etcd cluster for the bench: n members on 127.0.0.1, ports chosen free at start, one data
 * directory per member under baseDir. etcd fsyncs its WAL before acknowledging, and a write is
 * acknowledged once a majority has it, so an acknowledged put is durable on a majority.
 */

export interface EtcdMember extends StartedProcess {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
}

export interface EtcdCluster {
  members: EtcdMember[];
  /** Client URLs (http://127.0.0.1:port), one per member. */
  endpoints: string[];
  /** The limits the members were started with (clients must stay within them). */
  requestBytesMax: number;
  txnOpsMax: number;
}

export interface EtcdStartOptions {
  baseDir: string;
  /** Cluster size (default 3). */
  members?: number;
  binary?: string;
  /** etcd --quota-backend-bytes: the bench keeps history, so it is raised from etcd's 2 GiB default. */
  quotaBackendBytes?: number;
  /** etcd --max-request-bytes: raised from 1.5 MiB so batches of large values fit. */
  requestBytesMax?: number;
  /** etcd --max-txn-ops (etcd's default is 128). */
  txnOpsMax?: number;
  /** How long to wait for every member to report healthy. */
  readyTimeoutMs?: number;
}

export const etcdDefaults = {
  members: 3,
  binary: 'etcd',
  quotaBackendBytes: 8 * 1024 ** 3,
  requestBytesMax: 32 * 1024 ** 2,
  txnOpsMax: 128,
  readyTimeoutMs: 30_000,
} as const;

export async function startEtcd(options: EtcdStartOptions): Promise<EtcdCluster> {
  const o = { ...etcdDefaults, ...options };
  if (!Number.isInteger(o.members) || o.members < 1 || o.members > 9) throw new Error(`etcd members must be 1..9, got ${o.members}`);
  const ports = await freePorts(2 * o.members);
  const token = `squall-bench-${randomBytes(4).toString('hex')}`;
  const names = Array.from({ length: o.members }, (_, i) => `m${i}`);
  const peerUrl = (i: number) => `http://127.0.0.1:${ports[2 * i + 1]}`;
  const initialCluster = names.map((name, i) => `${name}=${peerUrl(i)}`).join(',');
  const members: EtcdMember[] = [];
  try {
    for (const [i, name] of names.entries()) {
      const clientPort = ports[2 * i]!;
      const peerPort = ports[2 * i + 1]!;
      const dataDir = join(options.baseDir, 'etcd', name);
      // a data directory left by an earlier cluster would make etcd ignore --initial-cluster and wait for old peers
      rmSync(dataDir, { recursive: true, force: true });
      mkdirSync(dataDir, { recursive: true });
      const clientUrl = `http://127.0.0.1:${clientPort}`;
      const args = [
        `--name=${name}`,
        `--data-dir=${dataDir}`,
        `--listen-client-urls=${clientUrl}`,
        `--advertise-client-urls=${clientUrl}`,
        `--listen-peer-urls=${peerUrl(i)}`,
        `--initial-advertise-peer-urls=${peerUrl(i)}`,
        `--initial-cluster=${initialCluster}`,
        `--initial-cluster-token=${token}`,
        '--initial-cluster-state=new',
        `--quota-backend-bytes=${o.quotaBackendBytes}`,
        `--max-request-bytes=${o.requestBytesMax}`,
        `--max-txn-ops=${o.txnOpsMax}`,
        '--logger=zap',
        '--log-outputs=stderr',
        '--log-level=warn',
      ];
      const proc = spawnDetached(o.binary, args, join(options.baseDir, 'etcd', `${name}.log`), `--data-dir=${dataDir}`);
      members.push({ ...proc, name, clientPort, peerPort, dataDir });
    }
    const endpoints = members.map((m) => `http://127.0.0.1:${m.clientPort}`);
    const healthy = await waitFor(async () => (await Promise.all(endpoints.map(isHealthy))).every(Boolean), o.readyTimeoutMs, 200);
    if (!healthy) {
      const logs = members.map((m) => `--- ${m.name} (${m.logFile})\n${logFileTail(m.logFile)}`).join('\n');
      throw new Error(`etcd cluster did not become healthy within ${o.readyTimeoutMs} ms\n${logs}`);
    }
    return { members, endpoints, requestBytesMax: o.requestBytesMax, txnOpsMax: o.txnOpsMax };
  } catch (err) {
    await stopEtcd({ members, endpoints: [], requestBytesMax: o.requestBytesMax, txnOpsMax: o.txnOpsMax });
    throw err;
  }
}

/** Stops the members by pid; removes their data directories unless keepData (logs stay). */
export async function stopEtcd(cluster: EtcdCluster, keepData = false): Promise<void> {
  await Promise.all(cluster.members.map((m) => stopProcess(m)));
  if (!keepData) for (const m of cluster.members) rmSync(m.dataDir, { recursive: true, force: true });
}

/** etcd's /health answers {"health":"true"} once the member has a leader and can serve. */
async function isHealthy(endpoint: string): Promise<boolean> {
  try {
    const res = await request(`${endpoint}/health`, { headersTimeout: 2_000, bodyTimeout: 2_000 });
    const body = (await res.body.json()) as { health?: string };
    return res.statusCode === 200 && body.health === 'true';
  } catch {
    return false;
  }
}
