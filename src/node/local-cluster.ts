import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { logFileTail } from '../log.js';
import type { ClusterConfig } from './cluster-config.js';
import { withMallocTuning } from './malloc-tuning.js';
import { freePorts, portFree } from './ports.js';

/**
 * A cluster of member processes on one machine (`squall cluster`, the multi-process tests, the bench):
 * writes a cluster file with free ports under the data directory (or reuses the one there, so a cluster
 * restarts with the same members and addresses), starts one `squall start --config … --id N` process per
 * member, and stops them by pid.
 */
export interface LocalClusterOptions {
  dataDir: string;
  nodes: number;
  shards: number;
  /** Replicas per shard (default: min(3, nodes)). */
  replicas?: number;
  host?: string;
  /** HTTP port of member 1; member N gets httpPort + N - 1 (each checked free). Default: any free ports. */
  httpPort?: number;
  /** Group overrides for the cluster file (heartbeats, majority rule...). */
  group?: Record<string, unknown>;
  /** The cluster file's `transport` entry (default: absent, i.e. the TCP driver). */
  transport?: { kind: 'tcp' } | { kind: 'fabric'; provider: string };
  /** Extra node flags of the member processes (e.g. ['--cpu-prof', '--cpu-prof-dir=DIR'] to profile them). */
  nodeArgs?: string[];
  /** Environment of the member processes (e.g. SQUALL_LOG_LEVEL). */
  env?: NodeJS.ProcessEnv;
  /** Where member output goes: 'inherit' (the terminal), 'ignore', or 'file' (DIR/node-N.log, appended); default 'ignore'. */
  stdio?: 'inherit' | 'ignore' | 'file';
}

export interface LocalMember {
  id: number;
  url: string;
  process: ChildProcess | null;
}

const BIN = fileURLToPath(new URL('../../bin/squall.js', import.meta.url));

export class LocalCluster {
  readonly configFile: string;
  readonly config: ClusterConfig;
  readonly #o: LocalClusterOptions;
  readonly members = new Map<number, LocalMember>();

  private constructor(o: LocalClusterOptions, configFile: string, config: ClusterConfig) {
    this.#o = o;
    this.configFile = configFile;
    this.config = config;
    for (const m of config.members) this.members.set(m.id, { id: m.id, url: `http://${m.httpHost ?? m.host}:${m.httpPort}`, process: null });
  }

  /** Plans the cluster (or reuses the cluster file already in the data directory). */
  static async plan(o: LocalClusterOptions): Promise<LocalCluster> {
    const dataDir = resolve(o.dataDir);
    mkdirSync(dataDir, { recursive: true });
    const file = join(dataDir, 'cluster.json');
    if (existsSync(file)) return new LocalCluster(o, file, JSON.parse(readFileSync(file, 'utf8')) as ClusterConfig);
    const host = o.host ?? '127.0.0.1';
    const replicas = o.replicas ?? Math.min(3, o.nodes);
    const members = [];
    const free = await freePorts(2 * o.nodes, host);
    for (let id = 1; id <= o.nodes; id++) {
      let httpPort = free[2 * id - 1]!;
      if (o.httpPort !== undefined && o.httpPort !== 0) {
        httpPort = o.httpPort + id - 1;
        if (!(await portFree(httpPort, host))) throw new Error(`port ${httpPort} on ${host} is in use (choose another first HTTP port)`);
      }
      members.push({ id, host, port: free[2 * id - 2]!, httpPort });
    }
    const config = {
      name: `local-${process.pid}-${Date.now()}`,
      members,
      layout: { persistent: [{ shards: o.shards, replicas }], volatile: [{ shards: 1, replicas }] },
      pools: [],
      group: { ...(o.nodes === 2 ? { majorityRule: false } : {}), ...(o.group ?? {}) },
      ...(o.transport ? { transport: o.transport } : {}),
    };
    writeFileSync(file, JSON.stringify(config, null, 2) + '\n');
    return new LocalCluster(o, file, config as ClusterConfig);
  }

  dataDirOf(id: number): string {
    return join(resolve(this.#o.dataDir), `node-${id}`);
  }

  /** Starts member `id` (a process); resolves once it answers /healthz (bounded by timeoutMs). */
  async start(id: number, timeoutMs = 60_000): Promise<LocalMember> {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    if (m.process && m.process.exitCode === null && m.process.signalCode === null) return m;
    // An IPC channel: the member exits when it closes, i.e. when this process is gone (even by SIGKILL).
    const logFile = this.#o.stdio === 'file' ? join(resolve(this.#o.dataDir), `node-${id}.log`) : null;
    const out = this.#o.stdio === 'file' ? openSync(logFile!, 'a') : (this.#o.stdio ?? 'ignore');
    const child = spawn(process.execPath, [...(this.#o.nodeArgs ?? []), BIN, 'start', '--config', this.configFile, '--id', String(id), '--data', this.dataDirOf(id)], {
      stdio: ['ignore', out, out, 'ipc'],
      env: withMallocTuning({ ...process.env, ...(this.#o.env ?? {}), SQUALL_EXIT_WITH_PARENT: '1' }),
    });
    child.channel?.unref(); // the channel alone must not keep this process running
    if (typeof out === 'number') closeSync(out);
    m.process = child;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        const tail = logFile ? `; the end of its log (${logFile}):\n${logFileTail(logFile)}` : '';
        throw new Error(`member ${id} exited during start (code ${child.exitCode}, signal ${child.signalCode})${tail}`);
      }
      try {
        const r = await request(`${m.url}/healthz`, { headersTimeout: 1000, bodyTimeout: 1000 });
        await r.body.dump();
        if (r.statusCode === 200) return m;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`member ${id} did not serve within ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async startAll(timeoutMs = 60_000): Promise<void> {
    await Promise.all([...this.members.keys()].map((id) => this.start(id, timeoutMs)));
  }

  /** Resolves once every running member answers /readyz (in an installed view), bounded. */
  async waitReady(timeoutMs = 60_000, ids: readonly number[] = [...this.members.keys()]): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const id of ids) {
      const m = this.members.get(id)!;
      for (;;) {
        try {
          const r = await request(`${m.url}/readyz`, { headersTimeout: 1000, bodyTimeout: 1000 });
          await r.body.dump();
          if (r.statusCode === 200) break;
        } catch {
          // not up
        }
        if (Date.now() > deadline) throw new Error(`member ${id} not ready within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** SIGKILL member `id` and wait until its process is gone. */
  async kill(id: number): Promise<void> {
    await this.#signal(id, 'SIGKILL', 0);
  }

  /** SIGTERM member `id` (clean stop), SIGKILL after graceMs. */
  async stop(id: number, graceMs = 10_000): Promise<void> {
    await this.#signal(id, 'SIGTERM', graceMs);
  }

  async stopAll(graceMs = 10_000): Promise<void> {
    await Promise.all([...this.members.keys()].map((id) => this.stop(id, graceMs)));
  }

  async killAll(): Promise<void> {
    await Promise.all([...this.members.keys()].map((id) => this.kill(id)));
  }

  async #signal(id: number, signal: NodeJS.Signals, graceMs: number): Promise<void> {
    const m = this.members.get(id);
    const child = m?.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    let timer: NodeJS.Timeout | null = null;
    if (signal !== 'SIGKILL') timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    if (timer) clearTimeout(timer);
  }
}
