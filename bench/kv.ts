/**
 * `npm run bench -- kv`: one workload definition driven against every target (Squall, etcd, Redis)
 * through its own client path, on the same machine in the same run. Per row of the matrix (workload ×
 * value size × batch × concurrency) each target runs `runs` times, interleaved (run 1 of every target,
 * then run 2, ...) so drift in machine load hits all targets alike; each run is a warm-up followed by a
 * fixed measured duration of closed-loop workers. Rows report medians over the runs.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import cliProgress from 'cli-progress';
import type { PeerKind } from '../scripts/peers/state.js';
import { closedLoop, type Operation } from './closed-loop.js';
import { formatSize, parseKvOptions, type KvOptions } from './kv-options.js';
import { acquirePeers } from './peers-env.js';
import { formatMachine, formatTables, machineInfo, type MachineInfo } from './report.js';
import { mbPerSecond, median } from './stats.js';
import type { BenchRow, KvTarget, Op } from './target.js';
import { resolveTargets, type TargetEnv } from './targets/registry.js';

/** Requests in flight while preloading keys. */
const preloadConcurrency = 16;
/** Entries per preload request for targets with putMany (further capped by the target's limits). */
const preloadBatchEntriesMax = 100;
/** Share of puts in the mixed workload. */
export const mixedPutFraction = 0.1;

/** One cell of the matrix; every target gets one row for it. */
export interface Cell {
  op: Op;
  sizeBytes: number;
  batch: number;
  concurrency: number;
}

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
export function unsupported(target: Pick<KvTarget, 'getPast' | 'putMany' | 'limits'>, cell: Cell, keys: number): string | null {
  if (cell.op === 'get-past' && !target.getPast) return 'n/a: no reads at a past version';
  if (cell.batch > 1 && !target.putMany) return 'n/a: no batch writes';
  if (cell.batch > keys) return `n/a: batch of ${cell.batch} > ${keys} keys`;
  const limits = target.limits ?? {};
  if (cell.batch > 1 && limits.batchEntriesMax !== undefined && cell.batch > limits.batchEntriesMax) return `n/a: batch > ${limits.batchEntriesMax} entries (target limit)`;
  if (limits.requestBytesMax !== undefined && cell.batch * cell.sizeBytes > limits.requestBytesMax) return `n/a: request > ${formatSize(limits.requestBytesMax)} (target limit)`;
  return null;
}

/** The numbers of one measured run. */
export interface RunSample {
  opsPerS: number;
  p50Ms: number | null;
  p99Ms: number | null;
  errors: number;
  lastError?: string;
  load1m: number;
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

const keyName = (prefix: string, i: number) => `${prefix}-k${i}`;
const randomIndex = (n: number) => Math.floor(Math.random() * n);

/** Distinct random indexes below n (n ≥ count). */
function distinctIndexes(count: number, n: number): number[] {
  const picked = new Set<number>();
  while (picked.size < count) picked.add(randomIndex(n));
  return [...picked];
}

/** Version round v of a preloaded value carries v in its first 4 bytes, so get-past can check it read the right one. */
function tagged(base: Uint8Array, round: number): Uint8Array {
  const value = Buffer.from(base);
  if (value.length >= 4) value.writeUInt32LE(round, 0);
  return value;
}
function tagOf(value: Uint8Array): number | null {
  return value.length >= 4 ? Buffer.from(value.buffer, value.byteOffset, value.byteLength).readUInt32LE(0) : null;
}

/** Keys written `versions` times each (in rounds, so versions of a key are ordered); refs[key][round]. */
export async function preload(target: KvTarget, prefix: string, keys: number, versions: number, base: Uint8Array): Promise<unknown[][]> {
  const refs: unknown[][] = Array.from({ length: keys }, () => []);
  const limits = target.limits ?? {};
  const chunk = target.putMany
    ? Math.max(1, Math.min(preloadBatchEntriesMax, limits.batchEntriesMax ?? Infinity, Math.floor((limits.requestBytesMax ?? Infinity) / base.length)))
    : 1;
  for (let round = 0; round < versions; round++) {
    const value = tagged(base, round);
    const starts = Array.from({ length: Math.ceil(keys / chunk) }, (_, i) => i * chunk);
    let next = 0;
    const worker = async () => {
      while (next < starts.length) {
        const from = starts[next++]!;
        const indexes = Array.from({ length: Math.min(chunk, keys - from) }, (_, i) => from + i);
        const ref = target.putMany && indexes.length > 1
          ? await target.putMany(indexes.map((i) => ({ key: keyName(prefix, i), value })))
          : await target.put(keyName(prefix, indexes[0]!), value);
        for (const i of indexes) refs[i]![round] = ref;
      }
    };
    await Promise.all(Array.from({ length: preloadConcurrency }, worker));
  }
  return refs;
}

/** The operation a cell runs against a target, over keys prefix-k0 .. prefix-k(keys-1). */
export function operationFor(target: KvTarget, cell: Cell, prefix: string, keys: number, base: Uint8Array, refs: unknown[][] | null): Operation {
  const expectLength = (v: Uint8Array | null, key: string) => {
    if (v === null) throw new Error(`${key}: not found`);
    if (v.length !== cell.sizeBytes) throw new Error(`${key}: read ${v.length} bytes, expected ${cell.sizeBytes}`);
    return v;
  };
  const get = async () => {
    const key = keyName(prefix, randomIndex(keys));
    expectLength(await target.get(key), key);
    return 1;
  };
  const put = async () => {
    await target.put(keyName(prefix, randomIndex(keys)), base);
    return 1;
  };
  switch (cell.op) {
    case 'put':
      if (cell.batch === 1) return put;
      return async () => {
        await target.putMany!(distinctIndexes(cell.batch, keys).map((i) => ({ key: keyName(prefix, i), value: base })));
        return cell.batch;
      };
    case 'get':
      return get;
    case 'mixed':
      return () => (Math.random() < mixedPutFraction ? put() : get());
    case 'get-past': {
      if (!refs || !target.getPast) throw new Error('get-past needs preloaded refs and getPast');
      const getPast = target.getPast.bind(target);
      return async () => {
        const i = randomIndex(keys);
        const keyRefs = refs[i]!;
        const round = randomIndex(keyRefs.length);
        const key = keyName(prefix, i);
        const value = expectLength(await getPast(key, keyRefs[round]), key);
        const tag = tagOf(value);
        if (tag !== null && tag !== round) throw new Error(`${key}: read version ${tag} at the ref of version ${round}`);
        return 1;
      };
    }
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
  const entries = resolveTargets(o.targets);
  const kinds = [...new Set(entries.flatMap(([, e]) => (e.needs ? [e.needs] : [])))] as PeerKind[];
  const peers = await acquirePeers(kinds, o.peersDir, io.log);
  const onSignal = () => {
    void peers.release().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const opened: KvTarget[] = [];
  let bar: cliProgress.SingleBar | null = null;
  try {
    const env: TargetEnv = { squallUrl: o.url, peers: peers.state };
    const concurrencyMax = Math.max(...o.concurrencies);
    for (const [, entry] of entries) {
      const target = entry.create(env);
      await target.open({ concurrency: concurrencyMax });
      opened.push(target);
    }
    const cells = planCells(o);
    const runSeconds = o.warmupSeconds + o.seconds;
    const totalSeconds = cells.length * opened.length * o.runs * runSeconds;
    io.log(`${cells.length} rows × ${opened.length} targets × ${o.runs} runs × ${runSeconds} s ≈ ${Math.ceil(totalSeconds / 60)} min (plus preloading); peers ${peers.origin}`);
    if (io.progress) {
      bar = new cliProgress.SingleBar(
        { format: '{bar} {percentage}% | {value}/{total} s | eta {eta_formatted} | {row}', noTTYOutput: true, notTTYSchedule: 10_000, stream: io.progress, hideCursor: true },
        cliProgress.Presets.shades_classic,
      );
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
            refs = await preload(target, prefix, keys, cell.op === 'get-past' ? o.versions : 1, base);
            preloaded.set(cacheKey, refs);
          }
        }
        runnable.push({ target, op: operationFor(target, cell, prefix, keys, base, refs), samples: [] });
      }
      for (let run = 0; run < o.runs; run++) {
        for (const r of runnable) {
          const label = `${cell.op} ${formatSize(cell.sizeBytes)}${cell.batch > 1 ? ` ×${cell.batch}` : ''} c=${cell.concurrency} ${r.target.name} run ${run + 1}/${o.runs}`;
          const at = doneSeconds;
          const progress = (offset: number) => (ms: number) => bar?.update(Math.floor(at + offset + ms / 1000), { row: label });
          await closedLoop(r.op, { concurrency: cell.concurrency, durationMs: o.warmupSeconds * 1000, record: false, onProgress: progress(0) });
          const res = await closedLoop(r.op, { concurrency: cell.concurrency, durationMs: o.seconds * 1000, record: true, onProgress: progress(o.warmupSeconds) });
          const h = res.histogram!;
          r.samples.push({
            opsPerS: res.entries / (res.elapsedMs / 1000),
            p50Ms: h.totalCount > 0 ? h.getValueAtPercentile(50) / 1000 : null,
            p99Ms: h.totalCount > 0 ? h.getValueAtPercentile(99) / 1000 : null,
            errors: res.errors,
            ...(res.lastError !== undefined ? { lastError: res.lastError } : {}),
            load1m: loadavg()[0] ?? 0,
          });
          doneSeconds += runSeconds;
          bar?.update(doneSeconds, { row: label });
        }
      }
      for (const r of runnable) cellRows.set(r.target, rowFromRuns(r.target, cell, keys, r.samples));
      for (const target of opened) rows.push(cellRows.get(target)!);
    }
    bar?.update(totalSeconds, { row: 'done' });
    return { rows, machine, peersOrigin: peers.origin };
  } finally {
    bar?.stop();
    await Promise.allSettled(opened.map((t) => t.close()));
    await peers.release();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
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
