/**
 * `npm run bench -- client-cpu`: the CPU the TypeScript client spends per request, measured against
 * fixed-answer nodes (bench/fixed-answer.ts) in a child process, so the server's work is not counted: CPU of
 * this process (user + system, process.cpuUsage) over a fixed number of requests made by closed-loop workers,
 * after a warm-up. With --nodes > 1 the client routes over a cluster layout (one seed URL, the layout read
 * from /v1/cluster), which is what routing costs per request on the hot path.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Command, InvalidArgumentError, Option } from 'commander';
import { SquallClient, type ClientOptions } from '../src/client/index.js';
import { parsePositiveInt, parseSize } from './kv-options.js';
import { median } from './stats.js';

export interface ClientCpuOptions {
  op: 'put' | 'get';
  nodes: number;
  shards: number;
  replicas: number;
  concurrency: number;
  /** Measured requests per run. */
  requests: number;
  /** Unmeasured requests before each run (JIT, connections, caches). */
  warmupRequests: number;
  runs: number;
  sizeBytes: number;
  /** Keys the requests spread over (so they spread over shards). */
  keys: number;
  routing: boolean;
}

/** Longest wait for the fixed-answer nodes to listen. */
const SERVER_START_TIMEOUT_MS = 30_000;

export function clientCpuCommand(): Command {
  return new Command('client-cpu')
    .description('client CPU per request against fixed-answer nodes (no store behind them)')
    .addOption(new Option('--op <op>', 'request kind').choices(['put', 'get']).default('put'))
    .option('--nodes <n>', 'fixed-answer nodes (a cluster layout when > 1)', parsePositiveInt, 1)
    .option('--shards <n>', 'shards of the pool', parsePositiveInt, 1)
    .option('--replicas <n>', 'members per shard', parsePositiveInt, 3)
    .option('--concurrency <n>', 'requests in flight (closed-loop workers)', parsePositiveInt, 64)
    .option('--requests <n>', 'measured requests per run', parsePositiveInt, 50_000)
    .option('--warmup-requests <n>', 'unmeasured requests before each run', parsePositiveInt, 10_000)
    .option('--runs <n>', 'runs (the median is reported)', parsePositiveInt, 5)
    .option('--size <bytes>', 'value size of puts', parseSize, 1024)
    .option('--keys <n>', 'keys the requests spread over', parsePositiveInt, 1000)
    .addOption(new Option('--no-routing', 'send every request to the seed (client option routing: false)'));
}

export function parseClientCpuOptions(argv: readonly string[], command = clientCpuCommand()): ClientCpuOptions {
  command.parse([...argv], { from: 'user' });
  const o = command.opts<Omit<ClientCpuOptions, 'sizeBytes'> & { size: number }>();
  if (o.replicas > o.nodes && o.nodes > 1) throw new InvalidArgumentError(`--replicas ${o.replicas} > --nodes ${o.nodes}`);
  const { size, ...rest } = o;
  return { ...rest, sizeBytes: size };
}

/** Starts the fixed-answer nodes; resolves with their URLs and a stop function (kills the child by pid). */
async function startNodes(o: ClientCpuOptions): Promise<{ urls: string[]; stop: () => void }> {
  const script = new URL('./fixed-answer.ts', import.meta.url).pathname;
  const child = spawn(process.execPath, ['--import', 'tsx', script, '--nodes', String(o.nodes), '--shards', String(o.shards), '--replicas', String(o.replicas)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const stop = (): void => {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
  };
  try {
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`fixed-answer nodes did not start in ${SERVER_START_TIMEOUT_MS} ms`)), SERVER_START_TIMEOUT_MS);
      child.once('exit', (code) => reject(new Error(`fixed-answer nodes exited with ${code}`)));
      createInterface({ input: child.stdout! }).once('line', (l) => {
        clearTimeout(timer);
        resolve(l);
      });
    });
    return { urls: (JSON.parse(line) as { urls: string[] }).urls, stop };
  } catch (e) {
    stop();
    throw e;
  }
}

async function drive(client: SquallClient, o: ClientCpuOptions, requests: number, value: Buffer): Promise<void> {
  let next = 0;
  const keys = Array.from({ length: o.keys }, (_, i) => `/bench/k${i}`);
  const worker = async (): Promise<void> => {
    while (next < requests) {
      const key = keys[next++ % keys.length]!;
      if (o.op === 'put') await client.put(key, value);
      else await client.get(key);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
}

/** µs of client CPU per request, one figure per run. */
export async function measureClientCpu(o: ClientCpuOptions): Promise<number[]> {
  const nodes = await startNodes(o);
  const options: ClientOptions = { url: nodes.urls[0]!, connections: o.concurrency };
  if (!o.routing) options.routing = false;
  const client = new SquallClient(options);
  const value = Buffer.alloc(o.sizeBytes, 1);
  const perRequestUs: number[] = [];
  try {
    for (let run = 0; run < o.runs; run++) {
      await drive(client, o, o.warmupRequests, value);
      const before = process.cpuUsage();
      await drive(client, o, o.requests, value);
      const used = process.cpuUsage(before);
      perRequestUs.push((used.user + used.system) / o.requests);
    }
  } finally {
    await client.close();
    nodes.stop();
  }
  return perRequestUs;
}

export async function main(argv: string[]): Promise<void> {
  const o = parseClientCpuOptions(argv);
  const runs = await measureClientCpu(o);
  const load = (await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(' ');
  process.stdout.write(
    `client CPU per ${o.op} (${o.sizeBytes} B) at c=${o.concurrency}, ${o.nodes} node(s), ${o.shards} shard(s), routing ${o.routing ? 'on' : 'off'}: ` +
      `median ${median(runs)!.toFixed(1)} µs over ${o.runs} runs of ${o.requests} [${runs.map((r) => r.toFixed(1)).join(', ')}]; load ${load}\n`,
  );
}
