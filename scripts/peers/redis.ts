import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePorts } from '../../src/node/ports.js';
import { spawnDetached, stopProcess, waitFor, type StartedProcess } from './process.js';
import { logFileTail } from '../../src/log.js';

/**
 * A local Redis group for the bench: a primary with AOF `appendfsync always` (the reply to a write is sent
 * after the AOF is fsynced) and n asynchronous replicas, all on 127.0.0.1 with ports chosen free at start.
 * Clients that want replicated writes follow them with `WAIT n timeout`, which returns once n replicas
 * have received (not fsynced) the write.
 */

export interface RedisServer extends StartedProcess {
  port: number;
  dir: string;
}

export interface RedisGroup {
  primary: RedisServer;
  replicas: RedisServer[];
}

export interface RedisStartOptions {
  baseDir: string;
  /** Number of replicas (default 2). */
  replicas?: number;
  binary?: string;
  /** Replication backlog; large so a burst of big values does not force a full resync. */
  replBacklogBytes?: number;
  /** How long to wait for every server to answer and for every replica link to be up. */
  readyTimeoutMs?: number;
}

export const redisDefaults = {
  replicas: 2,
  binary: 'redis-server',
  replBacklogBytes: 256 * 1024 ** 2,
  readyTimeoutMs: 30_000,
} as const;

export async function startRedis(options: RedisStartOptions): Promise<RedisGroup> {
  const o = { ...redisDefaults, ...options };
  if (!Number.isInteger(o.replicas) || o.replicas < 0 || o.replicas > 8) throw new Error(`redis replicas must be 0..8, got ${o.replicas}`);
  const ports = await freePorts(1 + o.replicas);
  const started: RedisServer[] = [];
  const start = (name: string, port: number, extra: string[]): RedisServer => {
    const dir = join(options.baseDir, 'redis', name);
    rmSync(dir, { recursive: true, force: true }); // no AOF from an earlier run
    mkdirSync(dir, { recursive: true });
    const args = [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--dir', dir,
      '--daemonize', 'no',
      // keep argv in /proc/<pid>/cmdline (redis rewrites it by default), so stop can check the pid is ours
      '--set-proc-title', 'no',
      '--save', '',
      '--logfile', '',
      '--loglevel', 'warning',
      '--repl-backlog-size', String(o.replBacklogBytes),
      // the bench writes 1 MiB values at high concurrency: do not drop replicas for a full output buffer
      '--client-output-buffer-limit', 'replica 0 0 0',
      ...extra,
    ];
    const server = { ...spawnDetached(o.binary, args, join(options.baseDir, 'redis', `${name}.log`), dir), port, dir };
    started.push(server);
    return server;
  };
  try {
    const primary = start('primary', ports[0]!, ['--appendonly', 'yes', '--appendfsync', 'always']);
    const replicas = ports.slice(1).map((port, i) => start(`replica${i + 1}`, port, ['--appendonly', 'no', '--replicaof', '127.0.0.1', String(primary.port)]));
    const group = { primary, replicas };
    if (!(await waitFor(() => isReady(group), o.readyTimeoutMs, 200))) {
      const logs = started.map((s) => `--- ${s.logFile}\n${logFileTail(s.logFile)}`).join('\n');
      throw new Error(`redis primary and ${o.replicas} replicas did not come up within ${o.readyTimeoutMs} ms\n${logs}`);
    }
    return group;
  } catch (err) {
    await Promise.all(started.map((s) => stopProcess(s)));
    for (const s of started) rmSync(s.dir, { recursive: true, force: true });
    throw err;
  }
}

/** Stops the servers by pid (replicas first); removes their directories unless keepData (logs stay). */
export async function stopRedis(group: RedisGroup, keepData = false): Promise<void> {
  await Promise.all(group.replicas.map((s) => stopProcess(s)));
  await stopProcess(group.primary);
  if (!keepData) for (const s of [group.primary, ...group.replicas]) rmSync(s.dir, { recursive: true, force: true });
}

/** The primary sees every replica online and every replica has its link to the primary up. */
async function isReady(group: RedisGroup): Promise<boolean> {
  const info = async (port: number): Promise<string | null> => {
    const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1_000 });
    client.on('error', () => {});
    try {
      await client.connect();
      return await client.info('replication');
    } catch {
      return null;
    } finally {
      client.disconnect();
    }
  };
  const primaryInfo = await info(group.primary.port);
  if (primaryInfo === null) return false;
  const online = primaryInfo.split('\n').filter((l) => /^slave\d+:.*state=online/.test(l)).length;
  if (online < group.replicas.length) return false;
  const replicaInfos = await Promise.all(group.replicas.map((r) => info(r.port)));
  return replicaInfos.every((i) => i !== null && i.includes('master_link_status:up'));
}
