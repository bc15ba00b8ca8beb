/**
 * `npm run bench -- rejoin`: how a member catches up after missing writes. A 3-member local cluster (3
 * replicas, 2 persistent shards) is started; member 3 is SIGKILLed, `--mib` MiB of values are written through
 * member 1 while it is down (batches, `persisted`), then member 3 is restarted. Reported per size: seconds
 * from the restart until every one of its shards logged "state transfer complete", the bytes and chunks
 * moved, MB/s, and the views the survivors installed and the suspicions they logged meanwhile (a donor or a
 * joiner too busy to heartbeat shows up as extra views). Meanwhile two probes write 1 KiB values one at a
 * time through member 1 into the shards member 3 is copying, one `delivered`, one `persisted`: their
 * slowest puts show how long writes waited on the rejoin (a `persisted` put waits for every replica, the
 * one catching up included). A member not caught up within --timeout-s is reported so, with the counters.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { SquallClient } from '../src/client/index.js';
import { LocalCluster } from '../src/node/local-cluster.js';
import { formatSize, parseList, parsePositiveInt, parsePositiveNumber, parseSize } from './kv-options.js';
import { formatMachine, machineInfo, table } from './report.js';
import { median } from './stats.js';

export interface RejoinOptions {
  mib: number[];
  valueBytes: number;
  runs: number;
  /** Group config stateChunkBytes (undefined: the default). */
  chunkBytes: number | undefined;
  timeoutS: number;
  json: string | undefined;
}

export interface RejoinRow {
  mib: number;
  value_bytes: number;
  run: number;
  caught_up: boolean;
  /** Seconds from the restart to the last shard's "state transfer complete" (or to the timeout). */
  catch_up_s: number;
  transfers: number;
  chunks: number;
  bytes: number;
  mb_per_s: number | null;
  /** Views installed by members 1 and 2 after the restart (1 each when nothing else happened). */
  views_installed: number[];
  /** Suspicions members 1 and 2 logged after the restart. */
  suspicions: number;
  /** Sequential 1 KiB puts each probe completed from the restart to the catch-up, and its slowest. */
  probe: Record<'delivered' | 'persisted', ProbeResult>;
  load_1m: number;
}

/** Shards a member of the bench cluster holds: the pool registry, 2 persistent, 1 volatile. */
const SHARDS_PER_MEMBER = 4;
/** Values per write batch: about this many bytes. */
const BATCH_BYTES = 4 * 1024 * 1024;
/** The probe's value size. */
const PROBE_BYTES = 1024;

interface ProbeResult {
  puts: number;
  max_ms: number;
  failures: number;
}

/** Writes one value at a time until stopped; reports the count, the slowest put and the failed ones. */
function startProbe(url: string, durability: 'delivered' | 'persisted'): { stop(): Promise<ProbeResult> } {
  const client = new SquallClient({ url });
  const value = Buffer.alloc(PROBE_BYTES, 0x33);
  let stopping = false;
  let puts = 0;
  let failures = 0;
  let maxMs = 0;
  const loop = (async () => {
    for (let i = 0; !stopping; i++) {
      const t0 = performance.now();
      try {
        await client.put(`/rejoin/probe-${durability}-${i}`, value, { durability });
        puts++;
      } catch {
        failures++;
      }
      maxMs = Math.max(maxMs, performance.now() - t0);
    }
  })();
  return {
    async stop() {
      stopping = true;
      await loop;
      await client.close();
      return { puts, max_ms: maxMs, failures };
    },
  };
}

export function rejoinCommand(): Command {
  return new Command('rejoin')
    .description('time for a restarted member to catch up on writes it missed (state transfer)')
    .option('--mib <list>', 'MiB written while the member is down (comma-separated)', parseList(parsePositiveInt), [50, 200])
    .option('--value-size <bytes>', 'size of each value', parseSize, 64 * 1024)
    .option('--runs <n>', 'runs per size (the median is reported)', parsePositiveInt, 1)
    .option('--chunk <bytes>', 'group stateChunkBytes (default: the config default)', parseSize)
    .option('--timeout-s <s>', 'give up on a catch-up after this long', parsePositiveNumber, 300)
    .option('--json <file>', 'write the rows as JSON');
}

export function parseRejoinOptions(argv: readonly string[], command = rejoinCommand()): RejoinOptions {
  command.parse([...argv], { from: 'user' });
  const o = command.opts<{ mib: number[]; valueSize: number; runs: number; chunk?: number; timeoutS: number; json?: string }>();
  return { mib: o.mib, valueBytes: o.valueSize, runs: o.runs, chunkBytes: o.chunk, timeoutS: o.timeoutS, json: o.json };
}

interface LogLine {
  time: number;
  msg: string;
  chunks?: number;
  bytes?: number;
}

function logLines(file: string, sinceMs: number): LogLine[] {
  const out: LogLine[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    const j = JSON.parse(line) as LogLine;
    if (j.time >= sinceMs) out.push(j);
  }
  return out;
}

async function runOnce(o: RejoinOptions, mib: number, run: number): Promise<RejoinRow> {
  const dir = mkdtempSync(join(tmpdir(), 'squall-rejoin-'));
  const cluster = await LocalCluster.plan({
    dataDir: dir,
    nodes: 3,
    shards: 2,
    replicas: 3,
    group: o.chunkBytes !== undefined ? { stateChunkBytes: o.chunkBytes } : {},
    env: { SQUALL_LOG_LEVEL: 'info' },
    stdio: 'file',
  });
  const note = (what: string): void => void process.stderr.write(`  ${mib} MiB run ${run + 1}: ${what}\n`);
  try {
    await cluster.startAll();
    await cluster.waitReady();
    const client = new SquallClient({ url: cluster.members.get(1)!.url });
    try {
      await client.createPool('/rejoin', { type: 'persistent' });
      await cluster.kill(3);
      const value = Buffer.alloc(o.valueBytes, 0x5a);
      const total = Math.ceil((mib * 1024 * 1024) / o.valueBytes);
      const perBatch = Math.max(1, Math.floor(BATCH_BYTES / o.valueBytes));
      const startedWrite = Date.now();
      for (let i = 0; i < total; i += perBatch) {
        const n = Math.min(perBatch, total - i);
        const results = await client.batch(Array.from({ length: n }, (_, j) => ({ op: 'put' as const, key: `/rejoin/k${i + j}`, value })), { encoding: 'msgpack' });
        const bad = results.find((r) => r.status !== 200);
        if (bad) throw new Error(`write failed: ${bad.status} ${bad.error?.code ?? ''} ${bad.error?.message ?? ''}`);
      }
      note(`wrote ${total} values in ${((Date.now() - startedWrite) / 1000).toFixed(1)} s with member 3 down; restarting it`);
    } finally {
      await client.close();
    }
    const restartMs = Date.now();
    const probes = (['delivered', 'persisted'] as const).map((d) => startProbe(cluster.members.get(1)!.url, d));
    await cluster.start(3, o.timeoutS * 1000);
    const deadline = restartMs + o.timeoutS * 1000;
    let done: LogLine[] = [];
    while (Date.now() < deadline) {
      done = logLines(join(dir, 'node-3.log'), restartMs).filter((l) => l.msg === 'state transfer complete');
      if (done.length >= SHARDS_PER_MEMBER) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const [delivered, persisted] = await Promise.all(probes.map((p) => p.stop()));
    const caughtUp = done.length >= SHARDS_PER_MEMBER;
    const endMs = caughtUp ? Math.max(...done.map((l) => l.time)) : Date.now();
    const survivors = [1, 2].map((id) => logLines(join(dir, `node-${id}.log`), restartMs));
    const bytes = done.reduce((n, l) => n + (l.bytes ?? 0), 0);
    const seconds = (endMs - restartMs) / 1000;
    note(caughtUp ? `caught up in ${seconds.toFixed(1)} s` : `not caught up within ${o.timeoutS} s`);
    return {
      mib,
      value_bytes: o.valueBytes,
      run,
      caught_up: caughtUp,
      catch_up_s: seconds,
      transfers: done.length,
      chunks: done.reduce((n, l) => n + (l.chunks ?? 1), 0),
      bytes,
      mb_per_s: caughtUp && seconds > 0 ? bytes / 1e6 / seconds : null,
      // each view is logged twice (the group core and the node): count the core's lines, which name members
      views_installed: survivors.map((lines) => lines.filter((l) => l.msg === 'view installed' && 'members' in l && 'shards' in l).length),
      suspicions: survivors.reduce((n, lines) => n + lines.filter((l) => l.msg === 'suspecting member').length, 0),
      probe: { delivered: delivered!, persisted: persisted! },
      load_1m: loadavg()[0] ?? 0,
    };
  } finally {
    await cluster.killAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function main(argv: string[]): Promise<void> {
  const o = parseRejoinOptions(argv);
  const machine = machineInfo();
  process.stderr.write(`rejoin: ${o.mib.join(', ')} MiB of ${formatSize(o.valueBytes)} values, ${o.runs} run(s) each\n`);
  const rows: RejoinRow[] = [];
  for (const mib of o.mib) for (let run = 0; run < o.runs; run++) rows.push(await runOnce(o, mib, run));
  const cmd = `npm run bench -- rejoin ${argv.join(' ')}`.trim();
  const lines = o.mib.map((mib) => {
    const rs = rows.filter((r) => r.mib === mib);
    const ok = rs.filter((r) => r.caught_up);
    const med = (f: (r: RejoinRow) => number): string => (ok.length > 0 ? median(ok.map(f))!.toFixed(1) : '—');
    return [
      String(mib),
      `${ok.length}/${rs.length}`,
      med((r) => r.catch_up_s),
      med((r) => r.mb_per_s ?? 0),
      med((r) => r.chunks),
      rs.map((r) => r.views_installed.join('+')).join(' '),
      rs.map((r) => String(r.suspicions)).join(' '),
      ...(['delivered', 'persisted'] as const).map((d) =>
        rs.map((r) => `${r.probe[d].puts}/${Math.round(r.probe[d].max_ms)}${r.probe[d].failures > 0 ? ` (${r.probe[d].failures} failed)` : ''}`).join(' '),
      ),
    ];
  });
  process.stdout.write(
    `${cmd}\n${formatMachine(machine, rows)}\n` +
      `member 3 restarted after missing the writes; catch-up = restart → last shard's state transfer complete (medians of the runs that caught up);\n` +
      `probes = sequential ${formatSize(PROBE_BYTES)} puts through member 1 during the catch-up, per run: puts/slowest ms\n\n` +
      table(['MiB', 'caught up', 'catch-up s', 'MB/s', 'chunks', 'views by 1+2 (per run)', 'suspicions (per run)', 'delivered probe', 'persisted probe'], lines) +
      '\n',
  );
  if (o.json) writeFileSync(o.json, JSON.stringify(rows, null, 2) + '\n');
}
