import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { ProcCluster } from '../scripts/proc-cluster.js';

/**
 * `npm run bench -- multicast --members 3 --senders all|half|one --size BYTES --seconds S [--json FILE]`
 *
 * The analogue of Derecho's bandwidth_test: members as separate processes on 127.0.0.1 over the TCP
 * driver, one shard holding every member, the chosen senders streaming payloads of SIZE bytes as fast as
 * their windows allow. Each member counts what it delivers during the measured window (after a warm-up)
 * and the delivery latency of every payload (send time stamped in the payload; CLOCK_MONOTONIC is shared
 * by processes on one machine). Also measures the machine's loopback TCP throughput in the same run (one
 * stream between two processes) as the physical reference. Figures are medians over members.
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
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

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

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      members: { type: 'string', default: '3' },
      senders: { type: 'string', default: 'all' },
      size: { type: 'string', default: '100' },
      seconds: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '2' },
      window: { type: 'string' },
      'batch-bytes': { type: 'string' },
      'window-bytes': { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: npm run bench -- multicast --members N --senders all|half|one --size BYTES --seconds S [--warmup S]\n' +
        '       [--window PAYLOADS] [--window-bytes B] [--batch-bytes B] [--json FILE]\n',
    );
    return;
  }
  const members = Number(values.members);
  const size = Number(values.size);
  const seconds = Number(values.seconds);
  const warmup = Number(values.warmup);
  const senders = values.senders!;
  if (!['all', 'half', 'one'].includes(senders)) throw new Error(`--senders must be all, half or one (got ${senders})`);
  if (!(members >= 1 && size >= 8 && seconds > 0)) throw new Error('--members ≥ 1, --size ≥ 8 (the payload carries its send time), --seconds > 0');
  const senderCount = senders === 'all' ? members : senders === 'half' ? Math.ceil(members / 2) : 1;

  process.stderr.write(`load: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (${os.availableParallelism()} cores)\n`);
  process.stderr.write('measuring loopback TCP throughput (2 s)...\n');
  const loopback = await loopbackBytesPerSecond(2);

  // The group's configuration defaults, unless --window / --window-bytes / --batch-bytes say otherwise.
  const tuning: Record<string, number> = {};
  if (values.window) tuning.windowPayloads = Number(values.window);
  if (values['window-bytes']) tuning.windowBytes = Number(values['window-bytes']);
  if (values['batch-bytes']) tuning.batchBytesMax = Number(values['batch-bytes']);
  const cluster = await ProcCluster.create(
    members,
    { heartbeatPeriodMs: 100, suspectAfterMissedHeartbeats: 100, maxPayloadBytes: Math.max(size, 1024), ...tuning },
    { mode: 'bench' },
  );
  const cleanup = (): void => void cluster.close();
  process.once('SIGINT', cleanup);
  try {
    const ids = cluster.ids();
    for (const id of ids) cluster.spawn(id);
    await cluster.waitFor('the group to form', 60_000, () => cluster.agreedView(ids, ids));
    const sending = new Set(ids.slice(0, senderCount));
    const before = new Map(ids.map((id) => [id, cluster.members.get(id)!.events.length]));
    for (const id of ids) cluster.send(id, { cmd: 'bench', size, seconds, warmupSeconds: warmup, send: sending.has(id) });
    const bar = new cliProgress.SingleBar(
      { format: ' multicast {bar} {value}/{total} s', noTTYOutput: true, notTTYSchedule: 1000 },
      cliProgress.Presets.shades_classic,
    );
    const total = Math.ceil(warmup + seconds);
    bar.start(total, 0);
    const ticker = setInterval(() => bar.increment(), 1000);
    const reports = await cluster.waitFor('every member to report', (warmup + seconds) * 1000 + 60_000, () => {
      const out = ids.map((id) => cluster.members.get(id)!.events.slice(before.get(id)).find((e) => e.ev === 'bench'));
      return out.every((e) => e !== undefined) ? (out as Array<Record<string, number>>) : undefined;
    }, 100);
    clearInterval(ticker);
    bar.update(total);
    bar.stop();
    const perMember = reports.map((r, i) => ({
      id: ids[i]!,
      msgsPerS: r.delivered! / r.seconds!,
      gbPerS: r.bytes! / r.seconds! / 1e9,
      p50: r.p50!,
      p99: r.p99!,
      cpu: `${r.cpuUserPct}% user ${r.cpuSystemPct}% sys`,
      viewChanges: r.viewChanges!,
    }));
    for (const m of perMember) {
      process.stdout.write(
        `member ${m.id}${sending.has(m.id) ? ' (sender)' : ''}: ${Math.round(m.msgsPerS).toLocaleString('en')} msgs/s, ` +
          `${m.gbPerS.toFixed(3)} GB/s, latency p50 ${m.p50} µs, p99 ${m.p99} µs, cpu ${m.cpu}` +
          `${m.viewChanges > 0 ? `, ${m.viewChanges} view changes` : ''}\n`,
      );
    }
    const result: Result = {
      members,
      senders,
      size_bytes: size,
      delivered_msgs_per_s: Math.round(median(perMember.map((m) => m.msgsPerS))),
      delivered_gb_per_s: Number(median(perMember.map((m) => m.gbPerS)).toFixed(4)),
      latency_p50_us: median(perMember.map((m) => m.p50)),
      latency_p99_us: median(perMember.map((m) => m.p99)),
      loopback_gb_per_s: Number((loopback / 1e9).toFixed(3)),
    };
    process.stdout.write(
      `${members} members, ${senders} senders, ${size} B: ${result.delivered_msgs_per_s.toLocaleString('en')} msgs/s, ` +
        `${result.delivered_gb_per_s} GB/s delivered (median over members), latency p50 ${result.latency_p50_us} µs p99 ${result.latency_p99_us} µs; ` +
        `loopback TCP ${result.loopback_gb_per_s} GB/s\n`,
    );
    if (values.json) writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await cluster.close();
    process.off('SIGINT', cleanup);
  }
}
