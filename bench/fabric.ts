/**
 * `npm run bench -- fabric [options]`: the raw data plane between member processes, each libfabric provider
 * against plain node:net loopback in the same run, so the ceiling is known before a driver sits on top.
 * Every case starts fresh processes (bench/fabric-member.ts), runs --runs times, and prints medians.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { fabricAddonAvailable, loadFabricAddon } from '../src/transport/fabric/addon.js';
import type { BenchHello, BenchResult, BenchStart, FromBenchMember, ToBenchMember, Transport, Workload } from './fabric-member.js';

const memberScript = fileURLToPath(new URL('./fabric-member.ts', import.meta.url));
const CASE_TIMEOUT_MS = 120_000;

interface Row {
  workload: Workload;
  size_bytes: number;
  transport: Transport;
  members: number;
  msgs_per_s: number;
  mb_per_s: number;
  rtt_p50_us?: number;
  rtt_p99_us?: number;
  cpu_per_member?: number;
  vs_net?: number;
  runs: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function runCase(start: Omit<BenchStart, 'op' | 'rank'>): Promise<BenchResult[]> {
  const children: ChildProcess[] = [];
  const kill = () => {
    for (const c of children) if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };
  try {
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`case timed out: ${JSON.stringify(start)}`)), CASE_TIMEOUT_MS).unref());
    const members = [...Array(start.n).keys()].map((rank) => {
      const child = fork(memberScript, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(child);
      const wait = <T extends FromBenchMember['op']>(op: T) =>
        new Promise<Extract<FromBenchMember, { op: T }>>((resolve, reject) => {
          const on = (m: FromBenchMember) => {
            if (m.op === op) {
              child.off('message', on);
              resolve(m as Extract<FromBenchMember, { op: T }>);
            }
          };
          child.on('message', on);
          child.once('exit', (code, sig) => reject(new Error(`member ${rank} exited (${code ?? sig})`)));
        });
      const hello = wait('hello');
      const ready = wait('ready');
      const result = wait('result');
      for (const p of [hello, ready, result]) p.catch(() => {});
      child.send({ op: 'start', rank, ...start } satisfies ToBenchMember);
      return { child, hello, ready, result };
    });
    const hellos: BenchHello[] = (await Promise.race([Promise.all(members.map((m) => m.hello)), timeout])).map((h) => h.hello);
    for (const m of members) m.child.send({ op: 'peers', hellos } satisfies ToBenchMember);
    await Promise.race([Promise.all(members.map((m) => m.ready)), timeout]);
    for (const m of members) m.child.send({ op: 'go' } satisfies ToBenchMember);
    const results = (await Promise.race([Promise.all(members.map((m) => m.result)), timeout])).map((r) => r.result);
    for (const m of members) m.child.send({ op: 'exit' } satisfies ToBenchMember);
    return results;
  } finally {
    setTimeout(kill, 2000).unref();
  }
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command('fabric')
    .description('raw data plane: libfabric providers vs node:net loopback, between member processes')
    .option('--transports <list>', 'net and libfabric providers (shm,tcp,net,verbs)', 'net,shm,tcp')
    .option('--workloads <list>', 'ring,rows,pingpong,idle', 'ring,rows,pingpong,idle')
    .option('--sizes <list>', 'ring message sizes in bytes', '100,10240,1048576')
    .option('--members <n>', 'processes for ring/rows/idle (pingpong uses 2)', '3')
    .option('--seconds <s>', 'measurement window per run', '2')
    .option('--warmup-ms <ms>', 'warm-up before the window', '500')
    .option('--runs <n>', 'runs per case (medians are printed)', '3')
    .option('--json', 'print rows as JSON lines too')
    .parse(['node', 'fabric', ...argv]);
  const o = program.opts<{ transports: string; workloads: string; sizes: string; members: string; seconds: string; warmupMs: string; runs: string; json?: boolean }>();
  const transports = o.transports.split(',') as Transport[];
  if (transports.some((t) => t !== 'net') && !fabricAddonAvailable()) loadFabricAddon(); // throws the build hint
  const workloads = o.workloads.split(',') as Workload[];
  const sizes = o.sizes.split(',').map(Number);
  const members = Number(o.members);
  const seconds = Number(o.seconds);
  const runs = Number(o.runs);
  process.stdout.write(`# fabric bench: members=${members} seconds=${seconds} runs=${runs} loadavg(start)=${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);

  const rows: Row[] = [];
  for (const workload of workloads) {
    for (const size of workload === 'ring' ? sizes : [64]) {
      const byTransport = new Map<Transport, Row>();
      for (const transport of transports) {
        const n = workload === 'pingpong' ? 2 : members;
        const samples: BenchResult[][] = [];
        for (let r = 0; r < runs; r++) samples.push(await runCase({ n, transport, workload, sizeBytes: size, seconds, warmupMs: Number(o.warmupMs) }));
        // Delivered multicast messages/s: every message counts once when all n-1 others received it.
        const rates = samples.map((rs) => rs.reduce((a, x) => a + x.received, 0) / Math.max(1, n - 1) / seconds);
        const row: Row = {
          workload,
          size_bytes: size,
          transport,
          members: n,
          msgs_per_s: Math.round(median(rates)),
          mb_per_s: Math.round((median(rates) * size) / 1e6),
          cpu_per_member: Number(median(samples.map((rs) => rs.reduce((a, x) => a + x.cpu, 0) / rs.length)).toFixed(3)),
          runs,
        };
        if (workload === 'pingpong') {
          row.rtt_p50_us = median(samples.map((rs) => rs[0]!.rttP50Us ?? 0));
          row.rtt_p99_us = median(samples.map((rs) => rs[0]!.rttP99Us ?? 0));
          row.msgs_per_s = Math.round(median(samples.map((rs) => (rs[0]!.roundTrips ?? 0) / seconds)));
          row.mb_per_s = 0;
        }
        if (process.env.SQUALL_BENCH_DEBUG) process.stderr.write(`${JSON.stringify(samples.map((rs) => rs.map((x) => ({ sent: x.sent, received: x.received, turns: x.turns, blocked: x.blocked, polls: x.polls }))))}\n`);
        byTransport.set(transport, row);
        rows.push(row);
        const base = byTransport.get('net');
        if (base && transport !== 'net') {
          row.vs_net = workload === 'pingpong' ? Number((base.rtt_p50_us! / row.rtt_p50_us!).toFixed(2)) : Number((row.msgs_per_s / Math.max(1, base.msgs_per_s)).toFixed(2));
        }
        print(row);
        if (o.json) process.stdout.write(`${JSON.stringify(row)}\n`);
      }
    }
  }
  process.stdout.write(`# loadavg(end)=${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
}

let headerPrinted = false;
function print(r: Row): void {
  const cols = ['workload', 'size', 'transport', 'n', 'msgs/s', 'MB/s', 'rtt p50 µs', 'rtt p99 µs', 'cpu/member', 'vs net'];
  if (!headerPrinted) {
    process.stdout.write(`${cols.map((c) => c.padStart(11)).join('')}\n`);
    headerPrinted = true;
  }
  const v = [r.workload, r.size_bytes, r.transport, r.members, r.msgs_per_s, r.mb_per_s, r.rtt_p50_us ?? '', r.rtt_p99_us ?? '', r.cpu_per_member ?? '', r.vs_net ?? ''];
  process.stdout.write(`${v.map((x) => String(x).padStart(11)).join('')}\n`);
}
