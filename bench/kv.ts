/**
 * `npm run bench -- kv`: one workload definition driven against every target (Squall, etcd, Redis)
 * through its own client path, on the same machine in the same run. Per row of the matrix (workload ×
 * value size × batch × concurrency) each target runs `runs` times, interleaved (run 1 of every target,
 * then run 2, ...) so drift in machine load hits all targets alike; each run is a warm-up followed by a
 * fixed measured duration of closed-loop workers. Rows report medians over the runs.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type cliProgress from 'cli-progress';
import { measureRun, type Operation, type RunSample } from './closed-loop.js';
import { entryOverheadBytes, operationFor, preload, type Cell } from './workload.js';
import { formatSize, parseKvOptions, type KvOptions } from './kv-options.js';
import { openTargets } from './open-targets.js';
import { progressBar } from './progress.js';
import { formatMachine, formatTables, machineInfo, type MachineInfo } from './report.js';
import { mbPerSecond, median } from './stats.js';
import type { BenchRow, KvTarget, Op } from './target.js';


/** The matrix the options ask for, in run order. Only put rows are batched. */
export function planCells(o: Pick<KvOptions, 'ops' | 'sizesBytes' | 'batches' | 'concurrencies'>): Cell[] {
  const cells: Cell[] = [];
  for (const op of o.ops)
    for (const sizeBytes of o.sizesBytes)
      for (const batch of op === 'put' ? o.batches : [1])
        for (const concurrency of o.concurrencies) cells.push({ op, sizeBytes, batch, concurrency });
  return cells;
}

/** Keys a cell spreads over: all of --keys for puts; for preloaded rows, as many as fit in preloadBytesMax. */
export function keysFor(cell: Pick<Cell, 'op' | 'sizeBytes'>, o: Pick<KvOptions, 'keys' | 'versions' | 'preloadBytesMax'>): number {
  if (cell.op === 'put') return o.keys;
  const versions = cell.op === 'get-past' ? o.versions : 1;
  return Math.max(1, Math.min(o.keys, Math.floor(o.preloadBytesMax / (cell.sizeBytes * versions))));
}

/** Why a target cannot run a cell, or null when it can. */
export function unsupported(target: KvTarget, cell: Cell, keys: number): string | null {
  if (cell.op === 'get-past' && !target.getPast) return 'n/a: no reads at a past version';
  if (cell.batch > 1 && !target.putMany) return 'n/a: no batch writes';
  if (cell.batch > keys) return `n/a: batch of ${cell.batch} > ${keys} keys`;
  const limits = target.limits ?? {};
  if (cell.batch > 1 && limits.batchEntriesMax !== undefined && cell.batch > limits.batchEntriesMax) return `n/a: batch > ${limits.batchEntriesMax} entries (target limit)`;
  if (limits.requestBytesMax !== undefined && cell.batch * (cell.sizeBytes + entryOverheadBytes) > limits.requestBytesMax) return `n/a: request > ${formatSize(limits.requestBytesMax)} (target limit)`;
  return null;
}

/** A row from its runs: the median of each figure over the runs. */
export function rowFromRuns(target: KvTarget, cell: Cell, keys: number, samples: readonly RunSample[]): BenchRow {
  const ops = median(samples.map((s) => s.opsPerS));
  const lastError = samples.map((s) => s.lastError).filter((e) => e !== undefined).at(-1);
  return {
    target: target.name,
    op: cell.op,
    size_bytes: cell.sizeBytes,
    concurrency: cell.concurrency,
    batch: cell.batch,
    ops_per_s: ops,
    mb_per_s: ops === null ? null : mbPerSecond(ops, cell.sizeBytes),
    p50_ms: median(samples.flatMap((s) => (s.p50Ms === null ? [] : [s.p50Ms]))),
    p99_ms: median(samples.flatMap((s) => (s.p99Ms === null ? [] : [s.p99Ms]))),
    durability: guarantee(target, cell.op),
    runs: samples.length,
    keys,
    errors: samples.reduce((n, s) => n + s.errors, 0),
    ...(lastError !== undefined ? { last_error: lastError } : {}),
    load_1m: median(samples.map((s) => s.load1m)),
  };
}

/** A row with no numbers, and why. */
export function naRow(target: KvTarget, cell: Cell, keys: number, note: string): BenchRow {
  return {
    target: target.name, op: cell.op, size_bytes: cell.sizeBytes, concurrency: cell.concurrency, batch: cell.batch,
    ops_per_s: null, mb_per_s: null, p50_ms: null, p99_ms: null,
    durability: guarantee(target, cell.op), runs: 0, keys, errors: 0, load_1m: null, note,
  };
}

/** What a row's operations were guaranteed: durability for writes, consistency for reads. */
export function guarantee(target: Pick<KvTarget, 'durability' | 'readConsistency'>, op: Op): string {
  switch (op) {
    case 'put': return target.durability;
    case 'get': return target.readConsistency.get;
    case 'get-past': return target.readConsistency.getPast ?? 'n/a';
    case 'mixed': return `${target.durability}; reads: ${target.readConsistency.get}`;
  }
}

export interface KvRunIo {
  log: (line: string) => void;
  /** Progress bar stream (stderr); none when progress is off. */
  progress: NodeJS.WritableStream | null;
}

export interface KvResult {
  rows: BenchRow[];
  machine: MachineInfo;
  peersOrigin: string;
}

/** Runs the matrix the options ask for and returns its rows (the printing is main's). */
export async function runKv(o: KvOptions, io: KvRunIo): Promise<KvResult> {
  const machine = machineInfo();
  const { targets: opened, peersOrigin, close } = await openTargets({
    names: o.targets, ...(o.url !== undefined ? { squallUrl: o.url } : {}), ...(o.profileDir !== undefined ? { profileDir: o.profileDir } : {}), peersDir: o.peersDir, concurrency: Math.max(...o.concurrencies), clusterSize: o.clusterSize, log: io.log,
  });
  let bar: cliProgress.SingleBar | null = null;
  try {
    const cells = planCells(o);
    const runSeconds = o.warmupSeconds + o.seconds;
    const totalSeconds = cells.length * opened.length * o.runs * runSeconds;
    io.log(`${cells.length} rows × ${opened.length} targets × ${o.runs} runs × ${runSeconds} s ≈ ${Math.ceil(totalSeconds / 60)} min (plus preloading); peers ${peersOrigin}`);
    if (io.progress) {
      bar = progressBar(io.progress, '{bar} {percentage}% | {value}/{total} s | eta {eta_formatted} | {row}');
      bar.start(totalSeconds, 0, { row: 'starting' });
    }
    let doneSeconds = 0;
    const rows: BenchRow[] = [];
    const bases = new Map<number, Uint8Array>();
    const preloaded = new Map<string, unknown[][]>();
    for (const cell of cells) {
      const keys = keysFor(cell, o);
      const base = bases.get(cell.sizeBytes) ?? bases.set(cell.sizeBytes, randomBytes(cell.sizeBytes)).get(cell.sizeBytes)!;
      const prefix = cell.op === 'put' ? `p${cell.sizeBytes}` : cell.op === 'get-past' ? `h${cell.sizeBytes}v${o.versions}` : `g${cell.sizeBytes}`;
      const runnable: { target: KvTarget; op: Operation; samples: RunSample[] }[] = [];
      const cellRows = new Map<KvTarget, BenchRow>();
      for (const target of opened) {
        const why = unsupported(target, cell, keys);
        if (why) {
          cellRows.set(target, naRow(target, cell, keys, why));
          doneSeconds += o.runs * runSeconds;
          continue;
        }
        let refs: unknown[][] | null = null;
        if (cell.op !== 'put') {
          const cacheKey = `${target.name}/${prefix}/${keys}`;
          refs = preloaded.get(cacheKey) ?? null;
          if (!refs) {
            bar?.update(doneSeconds, { row: `preloading ${target.name} ${keys} keys × ${cell.op === 'get-past' ? o.versions : 1} × ${formatSize(cell.sizeBytes)}` });
            try {
              refs = await preload(target, prefix, keys, cell.op === 'get-past' ? o.versions : 1, base);
            } catch (err) {
              cellRows.set(target, naRow(target, cell, keys, `failed: preload: ${err instanceof Error ? err.message : String(err)}`));
              doneSeconds += o.runs * runSeconds;
              continue;
            }
            preloaded.set(cacheKey, refs);
          }
        }
        runnable.push({ target, op: operationFor(target, cell, prefix, keys, base, refs), samples: [] });
      }
      for (let run = 0; run < o.runs; run++) {
        for (const r of runnable) {
          const label = `${cell.op} ${formatSize(cell.sizeBytes)}${cell.batch > 1 ? ` ×${cell.batch}` : ''} c=${cell.concurrency} ${r.target.name} run ${run + 1}/${o.runs}`;
          const at = doneSeconds;
          r.samples.push(await measureRun(r.op, {
            concurrency: cell.concurrency,
            warmupMs: o.warmupSeconds * 1000,
            durationMs: o.seconds * 1000,
            onProgress: (ms) => bar?.update(Math.floor(at + ms / 1000), { row: label }),
          }));
          doneSeconds += runSeconds;
          bar?.update(doneSeconds, { row: label });
        }
      }
      for (const r of runnable) cellRows.set(r.target, rowFromRuns(r.target, cell, keys, r.samples));
      for (const target of opened) rows.push(cellRows.get(target)!);
    }
    bar?.update(totalSeconds, { row: 'done' });
    return { rows, machine, peersOrigin };
  } finally {
    bar?.stop();
    await close();
  }
}

export async function main(argv: string[]): Promise<void> {
  const options = parseKvOptions(argv);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const result = await runKv(options, { log, progress: options.progress ? process.stderr : null });
  const command = `npm run bench -- kv ${argv.join(' ')}`.trim();
  process.stdout.write(`\n${command}\n${formatMachine(result.machine, result.rows)}\npeers: ${result.peersOrigin}\n\n${formatTables(result.rows, options.baseline)}`);
  if (options.json) {
    writeFileSync(options.json, `${JSON.stringify(result.rows, null, 2)}\n`);
    log(`wrote ${result.rows.length} rows to ${options.json}`);
  }
  const failed = result.rows.filter((r) => r.errors > 0);
  for (const r of failed) log(`warning: ${r.target} ${workloadLabel(r)} had ${r.errors} failed operations (last: ${r.last_error})`);
}

const workloadLabel = (r: BenchRow) => `${r.op} ${formatSize(r.size_bytes)} c=${r.concurrency}${r.batch > 1 ? ` batch ${r.batch}` : ''}`;
