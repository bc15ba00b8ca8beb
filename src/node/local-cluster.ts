import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { logFileTail } from '../log.js';
import { DataDirLock } from './data-dir-lock.js';
import { parseClusterConfig, type ClusterConfig } from './cluster-config.js';
import { withMallocTuning } from './malloc-tuning.js';
import { freePorts, portFree } from './ports.js';

/**
 * A cluster of member processes on one machine (`squall cluster`, the multi-process tests, the bench):
 * writes a cluster file with free ports under the data directory (or reuses the one there, so a cluster
 * restarts with the same members and addresses), starts one `squall start --config … --id N` process per
 * member, and stops them by pid.
 *
 * Members run in their own process group (and session): a terminal's Ctrl-C reaches only the launcher, which
 * stops each member once by SIGTERM; a member that got the group's SIGINT as well would take the launcher's
 * SIGTERM for a second signal and exit without a clean stop. A launcher that dies without stopping them
 * (SIGKILL, a crash, a closed terminal) closes their IPC channel: a member then stops cleanly (one still
 * starting as soon as it serves; see cli/start.ts).
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
  /**
   * Where member output goes: 'inherit' (this process's stdout and stderr), 'stderr' (both to this process's
   * stderr, leaving its stdout to the launcher), 'ignore', or 'file' (DIR/node-N.log, appended); default 'ignore'.
   */
  stdio?: 'inherit' | 'stderr' | 'ignore' | 'file';
  /**
   * Options the caller asked for (a user's flags): plan refuses an existing cluster file that disagrees with
   * one of them. The others are only for a new cluster: an existing file wins over them (default: none).
   */
  given?: readonly LocalClusterOption[];
}

/** Options an existing cluster file is checked against; httpPort 0 (any free ports) agrees with any. */
export type LocalClusterOption = 'nodes' | 'shards' | 'replicas' | 'httpPort' | 'transport';

/** What an existing cluster file holds for an option given, and what was asked. */
export interface LocalClusterDifference {
  option: LocalClusterOption;
  inFile: string;
  asked: string;
}

/** Options that make no cluster (e.g. more replicas than nodes): nothing was written. */
export class LocalClusterOptionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LocalClusterOptionsError';
  }
}

/** An existing cluster file disagrees with options given: it is left as it is. */
export class LocalClusterMismatchError extends Error {
  constructor(
    readonly file: string,
    readonly differences: readonly LocalClusterDifference[],
  ) {
    super(`${file} disagrees with the options given: ${differences.map((d) => `${d.option} ${d.asked} (the file has ${d.inFile})`).join(', ')}`);
    this.name = 'LocalClusterMismatchError';
  }
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

  /**
   * Plans the cluster (or reuses the cluster file already in the data directory, checked, when it agrees with
   * the options `given`). A new cluster's file is checked before it is written, and written whole (a temporary
   * file renamed), so a failed plan leaves no file that a later run would reuse.
   */
  static async plan(o: LocalClusterOptions): Promise<LocalCluster> {
    const dataDir = resolve(o.dataDir);
    mkdirSync(dataDir, { recursive: true });
    const file = join(dataDir, 'cluster.json');
    if (existsSync(file)) {
      let json: unknown;
      try {
        json = JSON.parse(readFileSync(file, 'utf8'));
      } catch (e) {
        throw new Error(`invalid cluster file ${file}: ${(e as Error).message}`);
      }
      const existing = parseClusterConfig(json, `file ${file}`);
      const differences = LocalCluster.#differences(existing, o);
      if (differences.length > 0) throw new LocalClusterMismatchError(file, differences);
      return new LocalCluster(o, file, existing);
    }
    const host = o.host ?? '127.0.0.1';
    const replicas = o.replicas ?? Math.min(3, o.nodes);
    if (replicas > o.nodes) throw new LocalClusterOptionsError(`replicas ${replicas} is more than the ${o.nodes} nodes (each replica of a shard is on another node)`);
    const members = [];
    const free = await freePorts(2 * o.nodes, host);
    for (let id = 1; id <= o.nodes; id++) {
      let httpPort = free[2 * id - 1]!;
      if (o.httpPort !== undefined && o.httpPort !== 0) {
        httpPort = o.httpPort + id - 1;
        if (httpPort > 65_535) throw new LocalClusterOptionsError(`HTTP ports from ${o.httpPort} for ${o.nodes} nodes go past 65535`);
        if (!(await portFree(httpPort, host))) throw new Error(`port ${httpPort} on ${host} is in use: pass another --port (member N listens on port + N - 1; 0 picks free ports)`);
      }
      members.push({ id, host, port: free[2 * id - 2]!, httpPort });
    }
    const planned = {
      name: `local-${process.pid}-${Date.now()}`,
      members,
      layout: { persistent: [{ shards: o.shards, replicas }], volatile: [{ shards: 1, replicas }] },
      pools: [],
      group: { ...(o.nodes === 2 ? { majorityRule: false } : {}), ...(o.group ?? {}) },
      ...(o.transport ? { transport: o.transport } : {}),
    };
    let config: ClusterConfig;
    try {
      config = parseClusterConfig(planned, `file ${file}`);
    } catch (e) {
      throw new LocalClusterOptionsError((e as Error).message);
    }
    const temporary = `${file}.${process.pid}.tmp`;
    writeFileSync(temporary, JSON.stringify(planned, null, 2) + '\n');
    renameSync(temporary, file);
    return new LocalCluster(o, file, config);
  }

  /** Where an existing cluster file disagrees with the options given. */
  static #differences(c: ClusterConfig, o: LocalClusterOptions): LocalClusterDifference[] {
    const out: LocalClusterDifference[] = [];
    const given = new Set(o.given ?? []);
    const first = [...c.members].sort((a, b) => a.id - b.id)[0]!;
    const sg = c.layout.persistent[0]!;
    const transportOf = (t: unknown): string => {
      const k = (t ?? { kind: 'tcp' }) as { kind?: string; provider?: string };
      return k.kind === 'fabric' ? `fabric (${k.provider ?? '?'})` : String(k.kind);
    };
    const check = (option: LocalClusterOption, inFile: string | number, asked: string | number | undefined): void => {
      if (given.has(option) && asked !== undefined && String(asked) !== String(inFile)) out.push({ option, inFile: String(inFile), asked: String(asked) });
    };
    check('nodes', c.members.length, o.nodes);
    check('shards', sg.shards, o.shards);
    check('replicas', sg.replicas, o.replicas);
    check('httpPort', first.httpPort, o.httpPort === 0 ? undefined : o.httpPort);
    check('transport', transportOf(c.transport), transportOf(o.transport));
    return out;
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
    const logFd = logFile !== null ? openSync(logFile, 'a') : null;
    const out = logFd ?? (this.#o.stdio === 'stderr' ? process.stderr.fd : this.#o.stdio === 'inherit' ? 'inherit' : 'ignore');
    const child = spawn(process.execPath, [...(this.#o.nodeArgs ?? []), BIN, 'start', '--config', this.configFile, '--id', String(id), '--data', this.dataDirOf(id)], {
      stdio: ['ignore', out, out, 'ipc'],
      env: withMallocTuning({ ...process.env, ...(this.#o.env ?? {}), SQUALL_EXIT_WITH_PARENT: '1' }),
      // its own process group: signals to this one's group (Ctrl-C) do not reach it; this process stops it (see above)
      detached: true,
    });
    child.channel?.unref(); // the channel alone must not keep this process running
    if (logFd !== null) closeSync(logFd);
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
    // checked before starting any: a member's probes would otherwise be answered by the running cluster
    for (const id of this.members.keys()) {
      const owner = DataDirLock.owner(this.dataDirOf(id));
      if (owner !== null) {
        throw new Error(`the cluster in ${resolve(this.#o.dataDir)} is already running (member ${id} is process ${owner}): stop it first, or pass another --data`);
      }
    }
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

  /** Sends `signal` to every running member without waiting (a second SIGTERM makes a stopping member exit at once). */
  signalAll(signal: NodeJS.Signals): void {
    for (const m of this.members.values()) {
      if (m.process && m.process.exitCode === null && m.process.signalCode === null) m.process.kill(signal);
    }
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
