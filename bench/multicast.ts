import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import { ProcCluster } from '../scripts/proc-cluster.js';
import { FABRIC_PROVIDERS, loadFabricAddon, type FabricProvider } from '../src/transport/fabric/addon.js';
import type { TransportChoiceInput } from '../src/transport/transport-choice.js';
import { formatSize, parseList, parsePositiveInt, parsePositiveNumber, parseSize } from './kv-options.js';
import { fmtNumber, fmtRatio, table } from './report.js';
import { progressBar } from './progress.js';
import { median, ratio } from './stats.js';

/**
 * `npm run bench -- multicast --members 3 --senders all|half|one --size BYTES --seconds S [--json FILE]
 *    [--transport tcp,fabric --provider shm,tcp] [--runs N]`
 *
 * The analogue of Derecho's bandwidth_test: members as separate processes on 127.0.0.1, one shard holding
 * every member, the chosen senders streaming payloads of SIZE bytes as fast as their windows allow. Each
 * member counts what it delivers during the measured window (after a warm-up) and the delivery latency of
 * every payload (send time stamped in the payload; CLOCK_MONOTONIC is shared by processes on one machine).
 * Also measures the machine's loopback TCP throughput in the same invocation (one stream between two
 * processes) as the physical reference. A run's figures are medians over members; a row's, medians over runs.
 *
 * Transports: `tcp` is the TypeScript TCP driver; `fabric` the native data plane once per --provider (the TCP
 * driver then only carries links and the address exchange). Every (size, transport) pair gets a fresh
 * group per run, and runs are interleaved (run 1 of every transport, then run 2, ...) so a change in the
 * machine's load hits all transports alike. `×tcp` is the row's delivered throughput over the TCP driver's.
 */

interface Result {
  members: number;
  senders: string;
  size_bytes: number;
  delivered_msgs_per_s: number;
  delivered_gb_per_s: number;
  latency_p50_us: number;
  latency_p99_us: number;
  loopback_gb_per_s: number;
  transport: 'tcp' | 'fabric';
  /** The libfabric provider (fabric only). */
  provider: FabricProvider | null;
  runs: number;
  /** User + system CPU of one member process, % of a core (median over members and runs). */
  cpu_pct_per_member: number;
  /** View changes during the measured windows (any is a disturbed measurement). */
  view_changes: number;
  /** delivered_gb_per_s over the TCP driver's at this size, in this invocation (null for tcp, or without it). */
  vs_tcp: number | null;
  /** 1-minute load average at the end of the row's last run. */
  load_1m: number;
}

/** One run's figures: medians over members. */
interface RunFigures {
  msgsPerS: number;
  gbPerS: number;
  p50: number;
  p99: number;
  cpuPct: number;
  viewChanges: number;
}

interface TransportCase {
  label: string;
  transport: 'tcp' | 'fabric';
  provider: FabricProvider | null;
  choice: TransportChoiceInput;
}

/** Shm files of bench members start with this (removed for dead members when a group closes). */
const BENCH_SHM_PREFIX = 'sqbench';

const mid = (xs: readonly number[]): number => median(xs) ?? 0;

/** One TCP stream between this process and a child sink for `seconds`: bytes per second. */
async function loopbackBytesPerSecond(seconds: number): Promise<number> {
  const sink = spawn(
    process.execPath,
    [
      '-e',
      `const net=require('net');let n=0;const s=net.createServer(c=>{c.on('data',d=>n+=d.length);c.on('end',()=>{process.stdout.write(String(n));process.exit(0)})});` +
        `s.listen(0,'127.0.0.1',()=>process.stdout.write(s.address().port+'\\n'))`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    let out = '';
    sink.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const port = await new Promise<number>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('loopback sink did not start')), 10_000);
      const poll = setInterval(() => {
        if (out.includes('\n')) {
          clearInterval(poll);
          clearTimeout(t);
          resolve(Number(out.split('\n')[0]));
        }
      }, 5);
    });
    out = '';
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise((r) => socket.once('connect', r));
    const chunk = Buffer.alloc(1024 * 1024, 1);
    const start = performance.now();
    const endMs = start + seconds * 1000;
    await new Promise<void>((resolve) => {
      const write = (): void => {
        while (performance.now() < endMs) if (!socket.write(chunk)) return void socket.once('drain', write);
        resolve();
      };
      write();
    });
    socket.end();
    const received = await new Promise<number>((resolve) => sink.once('exit', () => resolve(Number(out))));
    return received / ((performance.now() - start) / 1000);
  } finally {
    if (sink.exitCode === null && sink.pid !== undefined) process.kill(sink.pid, 'SIGKILL');
  }
}

function multicastCommand(): Command {
  const choice = (allowed: readonly string[], what: string) => (item: string) => {
    if (!allowed.includes(item)) throw new InvalidArgumentError(`${what} must be one of ${allowed.join(', ')} (got ${item})`);
    return item;
  };
  return new Command('multicast')
    .description('ordered multicast throughput and latency between member processes on 127.0.0.1')
    .option('--members <n>', 'member processes (one shard holds them all)', parsePositiveInt, 3)
    .option('--senders <which>', 'all, half or one of the members send', choice(['all', 'half', 'one'], '--senders'), 'all')
    .option('--size <list>', 'payload sizes in bytes (100, 10KiB, 1MiB, ...; at least 8: the payload carries its send time)', parseList(parseSize), [100])
    .option('--transport <list>', 'tcp (the TypeScript TCP driver) and/or fabric (the native data plane, per --provider)', parseList(choice(['tcp', 'fabric'], '--transport')), ['tcp'])
    .option('--provider <list>', `libfabric providers for --transport fabric (${FABRIC_PROVIDERS.join(', ')})`, parseList(choice(FABRIC_PROVIDERS, '--provider')), ['shm', 'tcp'])
    .option('--seconds <s>', 'measured seconds per run', parsePositiveNumber, 5)
    .option('--warmup <s>', 'unmeasured seconds before each measurement', parsePositiveNumber, 2)
    .option('--runs <n>', 'runs per size and transport, interleaved (medians are reported)', parsePositiveInt, 1)
    .option('--window <payloads>', "the group's windowPayloads (default: the group config's)", parsePositiveInt)
    .option('--window-bytes <bytes>', "the group's windowBytes", parseSize)
    .option('--batch-bytes <bytes>', "the group's batchBytesMax", parseSize)
    .option('--json <file>', 'write the result: one object for a single row (issue 3 format), else an array of rows');
}

interface MulticastOptions {
  members: number;
  senders: 'all' | 'half' | 'one';
  size: number[];
  transport: Array<'tcp' | 'fabric'>;
  provider: FabricProvider[];
  seconds: number;
  warmup: number;
  runs: number;
  window?: number;
  windowBytes?: number;
  batchBytes?: number;
  json?: string;
}

/** A fresh group on `transport`: form it, measure once, close it (every process killed by pid). */
async function runOnce(o: MulticastOptions, size: number, c: TransportCase, run: number): Promise<RunFigures> {
  const senderCount = o.senders === 'all' ? o.members : o.senders === 'half' ? Math.ceil(o.members / 2) : 1;
  // The group's configuration defaults, unless --window / --window-bytes / --batch-bytes say otherwise.
  const tuning: Record<string, number> = {};
  if (o.window !== undefined) tuning.windowPayloads = o.window;
  if (o.windowBytes !== undefined) tuning.windowBytes = o.windowBytes;
  if (o.batchBytes !== undefined) tuning.batchBytesMax = o.batchBytes;
  const cluster = await ProcCluster.create(
    o.members,
    { heartbeatPeriodMs: 100, suspectAfterMissedHeartbeats: 100, maxPayloadBytes: Math.max(size, 1024), ...tuning },
    { mode: 'bench', transport: c.choice },
  );
  const cleanup = (): void => void cluster.close();
  process.once('SIGINT', cleanup);
  try {
    const ids = cluster.ids();
    for (const id of ids) cluster.spawn(id);
    await cluster.waitFor('the group to form', 60_000, () => cluster.agreedView(ids, ids));
    const sending = new Set(ids.slice(0, senderCount));
    const before = new Map(ids.map((id) => [id, cluster.members.get(id)!.events.length]));
    for (const id of ids) cluster.send(id, { cmd: 'bench', size, seconds: o.seconds, warmupSeconds: o.warmup, send: sending.has(id) });
    const bar = progressBar(process.stderr, ` ${formatSize(size)} ${c.label} run ${run}/${o.runs} {bar} {value}/{total} s`, 1000);
    const total = Math.ceil(o.warmup + o.seconds);
    bar.start(total, 0);
    const ticker = setInterval(() => bar.increment(), 1000);
    const reports = await cluster
      .waitFor(
        'every member to report',
        (o.warmup + o.seconds) * 1000 + 60_000,
        () => {
          const out = ids.map((id) => cluster.members.get(id)!.events.slice(before.get(id)).find((e) => e.ev === 'bench'));
          return out.every((e) => e !== undefined) ? (out as Array<Record<string, number>>) : undefined;
        },
        100,
      )
      .finally(() => clearInterval(ticker));
    bar.update(total);
    bar.stop();
    const perMember = reports.map((r, i) => ({
      id: ids[i]!,
      msgsPerS: r.delivered! / r.seconds!,
      gbPerS: r.bytes! / r.seconds! / 1e9,
      p50: r.p50!,
      p99: r.p99!,
      cpuUser: r.cpuUserPct!,
      cpuSystem: r.cpuSystemPct!,
      viewChanges: r.viewChanges!,
    }));
    for (const m of perMember) {
      process.stdout.write(
        `  ${formatSize(size)} ${c.label} run ${run}: member ${m.id}${sending.has(m.id) ? ' (sender)' : ''}: ${Math.round(m.msgsPerS).toLocaleString('en')} msgs/s, ` +
          `${m.gbPerS.toFixed(3)} GB/s, latency p50 ${m.p50} µs, p99 ${m.p99} µs, cpu ${m.cpuUser}% user ${m.cpuSystem}% sys` +
          `${m.viewChanges > 0 ? `, ${m.viewChanges} view changes` : ''}\n`,
      );
    }
    return {
      msgsPerS: mid(perMember.map((m) => m.msgsPerS)),
      gbPerS: mid(perMember.map((m) => m.gbPerS)),
      p50: mid(perMember.map((m) => m.p50)),
      p99: mid(perMember.map((m) => m.p99)),
      cpuPct: mid(perMember.map((m) => m.cpuUser + m.cpuSystem)),
      viewChanges: Math.max(...perMember.map((m) => m.viewChanges)),
    };
  } finally {
    await cluster.close();
    process.off('SIGINT', cleanup);
  }
}

export async function main(argv: string[]): Promise<void> {
  const command = multicastCommand();
  command.parse(argv, { from: 'user' });
  const o = command.opts<MulticastOptions>();
  if (o.size.some((s) => s < 8)) command.error('error: --size: at least 8 bytes (the payload carries its send time)');
  const cases: TransportCase[] = [];
  for (const t of o.transport) {
    if (t === 'tcp') cases.push({ label: 'tcp', transport: 'tcp', provider: null, choice: { kind: 'tcp' } });
    else for (const p of o.provider) cases.push({ label: `fabric ${p}`, transport: 'fabric', provider: p, choice: { kind: 'fabric', provider: p, shmPrefix: BENCH_SHM_PREFIX } });
  }
  // Asking for fabric without the addon fails here, with how to build it.
  if (cases.some((c) => c.transport === 'fabric')) loadFabricAddon();

  const loadText = (): string => os.loadavg().map((l) => l.toFixed(2)).join(' ');
  process.stderr.write(`load: ${loadText()} (${os.availableParallelism()} cores)\n`);
  process.stderr.write('measuring loopback TCP throughput (2 s)...\n');
  const loopbackGbPerS = Number(((await loopbackBytesPerSecond(2)) / 1e9).toFixed(3));

  const results: Result[] = [];
  const tables: string[] = [];
  for (const size of o.size) {
    const samples = new Map<string, RunFigures[]>(cases.map((c) => [c.label, []]));
    for (let run = 1; run <= o.runs; run++) {
      for (const c of cases) samples.get(c.label)!.push(await runOnce(o, size, c, run));
    }
    const load1m = os.loadavg()[0] ?? 0;
    const rows = cases.map((c): Result => {
      const s = samples.get(c.label)!;
      return {
        members: o.members,
        senders: o.senders,
        size_bytes: size,
        delivered_msgs_per_s: Math.round(mid(s.map((x) => x.msgsPerS))),
        delivered_gb_per_s: Number(mid(s.map((x) => x.gbPerS)).toFixed(4)),
        latency_p50_us: mid(s.map((x) => x.p50)),
        latency_p99_us: mid(s.map((x) => x.p99)),
        loopback_gb_per_s: loopbackGbPerS,
        transport: c.transport,
        provider: c.provider,
        runs: o.runs,
        cpu_pct_per_member: Math.round(mid(s.map((x) => x.cpuPct))),
        view_changes: s.reduce((n, x) => n + x.viewChanges, 0),
        vs_tcp: null,
        load_1m: Number(load1m.toFixed(2)),
      };
    });
    const tcpRow = rows.find((r) => r.transport === 'tcp');
    for (const r of rows) {
      if (r !== tcpRow && tcpRow) {
        const x = ratio(r.delivered_gb_per_s, tcpRow.delivered_gb_per_s);
        r.vs_tcp = x === null ? null : Number(x.toFixed(2));
      }
    }
    results.push(...rows);
    const text = [
      `== ${o.members} members, ${o.senders} senders, ${formatSize(size)} (medians of ${o.runs} run${o.runs > 1 ? 's' : ''}; load ${loadText()})`,
      table(
        ['transport', 'msgs/s', 'GB/s', 'p50 µs', 'p99 µs', 'cpu/member %', 'view changes', '×tcp'],
        rows.map((r) => [
          r.provider === null ? r.transport : `${r.transport} ${r.provider}`,
          fmtNumber(r.delivered_msgs_per_s),
          fmtNumber(r.delivered_gb_per_s),
          fmtNumber(r.latency_p50_us),
          fmtNumber(r.latency_p99_us),
          String(r.cpu_pct_per_member),
          String(r.view_changes),
          r.transport === 'tcp' ? '' : fmtRatio(r.vs_tcp),
        ]),
      ),
      `loopback TCP (one node:net stream, this invocation): ${loopbackGbPerS} GB/s`,
    ].join('\n');
    tables.push(text);
    process.stdout.write(`${text}\n`);
  }
  if (tables.length > 1) process.stdout.write(`\n${tables.join('\n\n')}\n`);
  if (o.json) writeFileSync(o.json, `${JSON.stringify(results.length === 1 ? results[0] : results, null, 2)}\n`);
}
