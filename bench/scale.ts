/**
 * `npm run bench -- scale`: scaling curves, each point the median of --runs measured runs:
 *  - history: cost of a read at a past ref (etcd: range at a revision) as one key's history grows;
 *  - keys: cost of a read at a past ref as the number of keys grows;
 *  - size: cost of a put as the value size grows;
 *  - replicas: put throughput as the copies of the data grow (each point a fresh Squall cluster of N
 *    members, N replicas, started and stopped by the bench; peers at N copies likewise).
 * Written as CSV (<out>.csv) and as one chart per curve (<out>-<curve>.svg and .png), over every target
 * in the registry that supports the curve. Points a target cannot reach in reasonable time (per-target
 * caps) or cannot do at all are kept as skipped points with the reason, never measured by proxy.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Command, InvalidArgumentError, Option } from 'commander';
import { latencyCurveSpec, renderSvg, svgToPng, throughputCurveSpec, type CurvePoint } from './chart.js';
import { measureRun, type Operation, type RunSample } from './closed-loop.js';
import { toCsv } from './csv.js';
import { guarantee, unsupported } from './kv.js';
import { addRunOptions, addTargetOptions, formatSize, parseList, parsePositiveInt, parseSize, parseTarget } from './kv-options.js';
import { openTargets, type OpenedTargets } from './open-targets.js';
import { progressBar } from './progress.js';
import { fmtNumber, formatMachine, machineInfo, table } from './report.js';
import { median } from './stats.js';
import type { KvTarget, Op } from './target.js';
import { isPeerTarget, targetRegistry } from './targets/registry.js';
import { batchEntriesFor, keyName, operationFor, randomIndex, requestEntriesFor, tagOf, tagged, withRetries, writeKeys } from './workload.js';

export const curveNames = ['history', 'keys', 'size', 'replicas'] as const;
export type CurveName = (typeof curveNames)[number];

export interface ScaleOptions {
  targets: string[];
  curves: CurveName[];
  /** Points of the history curve: versions of the one key. */
  versions: number[];
  /** Points of the keys curve: number of keys. */
  keyCounts: number[];
  /** Points of the size curve. */
  sizesBytes: number[];
  /** Value size of the history curve. */
  valueBytes: number;
  /** Value size of the keys curve (small: the curve is about the number of keys, not their bytes). */
  keysValueBytes: number;
  /** Operations in flight while measuring the history, keys and size curves. */
  concurrency: number;
  /** Requests in flight while preloading (single puts, or batches of distinct keys); one key's versions go one batch at a time. */
  writeConcurrency: number;
  /** Entries per preload request for targets with batches (within each target's limits). */
  preloadBatch: number;
  /** History points above this many versions are skipped for peer targets (etcd: one put per version). */
  versionsMaxPeer: number;
  /** Keys points above this many keys are skipped for peer targets. */
  keysMaxPeer: number;
  /** Points of the replicas curve: copies of the data (Squall members = replicas; etcd members; Redis primary + replicas). */
  replicaCounts: number[];
  /** Targets of the replicas curve. */
  replicasTargets: string[];
  replicasSizeBytes: number;
  replicasConcurrency: number;
  /** Puts per request on the replicas curve (1 = single puts). */
  replicasBatches: number[];
  seconds: number;
  warmupSeconds: number;
  runs: number;
  /** Keys the size and replicas curves spread their puts over. */
  keys: number;
  /** Output path prefix. */
  out: string;
  url?: string;
  profileDir?: string;
  clusterSize: number;
  peersDir: string;
  progress: boolean;
}

export interface ScalePoint extends CurvePoint {
  [column: string]: string | number | null;
  curve: CurveName;
  /** Entries per request (the replicas curve's batched series); 1 elsewhere. */
  batch: number;
  runs: number;
  errors: number;
  load_1m: number | null;
  /** What the target guaranteed: durability of a put, consistency of a read. */
  durability: string;
  /** Why the point has no figures (skipped), else ''. */
  note: string;
}

/** One preload: how fast a target took the writes that set up a curve's points. */
export interface PreloadStat {
  curve: CurveName;
  target: string;
  puts: number;
  seconds: number;
  putsPerS: number;
  /** How the puts were sent ("single puts", "batches of 2000", ...). */
  how: string;
}

export interface ScaleIo {
  log: (line: string) => void;
  /** Progress bars (stderr) during preloads; none when null. */
  progress: NodeJS.WritableStream | null;
}

export const scaleColumns = ['curve', 'target', 'x', 'batch', 'p50_ms', 'p99_ms', 'ops_per_s', 'runs', 'errors', 'load_1m', 'durability', 'note'] as const;

export const scaleDefaults = {
  versions: [10, 100, 1000, 10_000, 100_000, 1_000_000],
  keyCounts: [1000, 10_000, 100_000, 1_000_000, 10_000_000],
  sizesBytes: [100, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576],
  valueBytes: 1024,
  keysValueBytes: 100,
  versionsMaxPeer: 10_000,
  keysMaxPeer: 1_000_000,
  preloadBatch: 2000,
  writeConcurrency: 16,
  replicaCounts: [1, 3, 5],
  replicasSizeBytes: 1024,
  replicasConcurrency: 64,
  replicasBatches: [1, 100],
} as const;

export function scaleCommand(): Command {
  const d = scaleDefaults;
  const command = new Command('scale').description('scaling curves (CSV + SVG/PNG charts): past reads vs history depth and key count, puts vs value size, put throughput vs replicas');
  addTargetOptions(command)
    .option('--curves <list>', `curves: ${curveNames.join(', ')} (replicas runs last)`, parseList(parseCurve), [...curveNames])
    .option('--versions <list>', 'history curve points: versions of one key', parseList(parsePositiveInt), [...d.versions])
    .option('--key-counts <list>', 'keys curve points: number of keys', parseList(parsePositiveInt), [...d.keyCounts])
    .option('--size <list>', 'size curve points: value sizes', parseList(parseSize), [...d.sizesBytes])
    .option('--value-size <size>', 'value size of the history curve', parseSize, d.valueBytes)
    .option('--keys-value-size <size>', 'value size of the keys curve', parseSize, d.keysValueBytes)
    .option('--versions-max-peer <n>', 'peer targets (etcd) skip history points above this many versions', parsePositiveInt, d.versionsMaxPeer)
    .option('--keys-max-peer <n>', 'peer targets skip keys points above this many keys', parsePositiveInt, d.keysMaxPeer)
    .option('--concurrency <n>', 'operations in flight while measuring the history, keys and size curves', parsePositiveInt, 1)
    .option('--write-concurrency <n>', 'requests in flight while preloading (one key\'s versions go one batch at a time)', parsePositiveInt, d.writeConcurrency)
    .option('--preload-batch <n>', 'entries per preload request (Squall batch; etcd txn within its op limit)', parsePositiveInt, d.preloadBatch)
    .option('--replicas <list>', 'replicas curve points: copies of the data (each a fresh cluster the bench starts)', parseList(parsePositiveInt), [...d.replicaCounts])
    .option('--replicas-targets <list>', 'targets of the replicas curve (default: --targets, with squall-delivered after squall)', parseList(parseTarget))
    .option('--replicas-size <size>', 'value size of the replicas curve', parseSize, d.replicasSizeBytes)
    .option('--replicas-concurrency <n>', 'requests in flight on the replicas curve', parsePositiveInt, d.replicasConcurrency)
    .option('--replicas-batch <list>', 'puts per request on the replicas curve (1 = single puts)', parseList(parsePositiveInt), [...d.replicasBatches]);
  addRunOptions(command, { seconds: 2, warmupSeconds: 0.5, runs: 3 })
    .option('--keys <n>', 'keys the size and replicas curves spread their puts over', parsePositiveInt, 1000)
    .option('--out <prefix>', 'output path prefix', 'bench/out/scale')
    .addOption(new Option('--no-progress', 'no progress bars during preloads'));
  return command;
}

function parseCurve(text: string): CurveName {
  if (!(curveNames as readonly string[]).includes(text)) throw new InvalidArgumentError(`'${text}' is not a curve (${curveNames.join(', ')})`);
  return text as CurveName;
}

/** The replicas curve's default targets: the run's, with squall-delivered right after squall. */
export function defaultReplicasTargets(targets: readonly string[]): string[] {
  return targets.flatMap((t) => (t === 'squall' && !targets.includes('squall-delivered') ? ['squall', 'squall-delivered'] : [t]));
}

export function parseScaleOptions(argv: readonly string[], command = scaleCommand()): ScaleOptions {
  command.parse([...argv], { from: 'user' });
  const o = command.opts<{
    targets: string[]; curves: CurveName[]; versions: number[]; keyCounts: number[]; size: number[]; valueSize: number; keysValueSize: number;
    versionsMaxPeer: number; keysMaxPeer: number; concurrency: number; writeConcurrency: number; preloadBatch: number;
    replicas: number[]; replicasTargets?: string[]; replicasSize: number; replicasConcurrency: number; replicasBatch: number[];
    seconds: number; warmup: number; runs: number; keys: number; out: string; url?: string; cluster: number; peersDir: string; profile?: string; progress: boolean;
  }>();
  const ascending = (xs: number[]) => [...xs].sort((a, b) => a - b);
  // the replicas curve runs last, after the curves that share one set of targets
  const curves = [...o.curves.filter((c) => c !== 'replicas'), ...o.curves.filter((c) => c === 'replicas')];
  return {
    targets: o.targets, curves, versions: ascending(o.versions), keyCounts: ascending(o.keyCounts), sizesBytes: ascending(o.size),
    valueBytes: o.valueSize, keysValueBytes: o.keysValueSize, versionsMaxPeer: o.versionsMaxPeer, keysMaxPeer: o.keysMaxPeer,
    concurrency: o.concurrency, writeConcurrency: o.writeConcurrency, preloadBatch: o.preloadBatch,
    replicaCounts: ascending(o.replicas), replicasTargets: o.replicasTargets ?? defaultReplicasTargets(o.targets), replicasSizeBytes: o.replicasSize,
    replicasConcurrency: o.replicasConcurrency, replicasBatches: ascending(o.replicasBatch),
    seconds: o.seconds, warmupSeconds: o.warmup, runs: o.runs, keys: o.keys, out: o.out,
    ...(o.url !== undefined ? { url: o.url } : {}), clusterSize: o.cluster, peersDir: o.peersDir,
    ...(o.profile !== undefined ? { profileDir: o.profile } : {}), progress: o.progress,
  };
}

/** A point from its runs: medians. */
export function pointFromRuns(curve: CurveName, target: string, x: number, samples: readonly RunSample[], durability = '', batch = 1): ScalePoint {
  const defined = (xs: (number | null)[]) => xs.filter((v): v is number => v !== null);
  return {
    curve, target, x, batch,
    p50_ms: median(defined(samples.map((s) => s.p50Ms))),
    p99_ms: median(defined(samples.map((s) => s.p99Ms))),
    ops_per_s: median(samples.map((s) => s.opsPerS)),
    runs: samples.length,
    errors: samples.reduce((n, s) => n + s.errors, 0),
    load_1m: median(samples.map((s) => s.load1m)),
    durability,
    note: '',
  };
}

/** A point that was not measured, and why. */
export function skippedPoint(curve: CurveName, target: string, x: number, note: string, batch = 1): ScalePoint {
  return { curve, target, x, batch, p50_ms: null, p99_ms: null, ops_per_s: null, runs: 0, errors: 0, load_1m: null, durability: '', note };
}

const opOf: Record<CurveName, Op> = { history: 'get-past', keys: 'get-past', size: 'put', replicas: 'put' };

async function measurePoint(
  o: Pick<ScaleOptions, 'runs' | 'warmupSeconds' | 'seconds'>, curve: CurveName, target: KvTarget, x: number, op: Operation,
  io: ScaleIo, run: { concurrency: number; batch?: number },
): Promise<ScalePoint> {
  const samples: RunSample[] = [];
  for (let i = 0; i < o.runs; i++) {
    samples.push(await measureRun(op, { concurrency: run.concurrency, warmupMs: o.warmupSeconds * 1000, durationMs: o.seconds * 1000 }));
  }
  const point = pointFromRuns(curve, target.name, x, samples, guarantee(target, opOf[curve]), run.batch ?? 1);
  const lastError = samples.map((s) => s.lastError).filter((e) => e !== undefined).at(-1);
  io.log(`${curve} ${seriesName(point)} x=${x}: p50 ${fmtNumber(point.p50_ms)} ms, p99 ${fmtNumber(point.p99_ms)} ms, ${fmtNumber(point.ops_per_s)} ops/s${point.errors ? `, ${point.errors} errors (${lastError})` : ''}`);
  return point;
}

/** The line a point belongs to in a chart: the target, and its batch size when batched. */
export const seriesName = (p: Pick<ScalePoint, 'target' | 'batch'>) => `${p.target}${p.batch > 1 ? ` ×${p.batch}` : ''}`;

const fmtDuration = (seconds: number) => (seconds < 120 ? `${Math.round(seconds)} s` : seconds < 7200 ? `${Math.round(seconds / 60)} min` : `${(seconds / 3600).toFixed(1)} h`);

/**
 * Tries of each preload request, the pause after the first failure (doubling after each next one): a
 * preload runs for minutes on a busy machine, where a member may be suspected and the view change answers
 * the writes in flight 503 "retry". A retried request is written again whole.
 */
const preloadAttemptsMax = 5;
const preloadRetryPauseMs = 1000;

/** Preloads shorter than this show no progress bar (only their start and end lines). */
const progressBarPutsMin = 10_000;

/** Counts a preload's puts, shows a bar with the rate and ETA, and records the rate when done. */
class Preload {
  readonly #bar;
  readonly #start = performance.now();
  #done = 0;
  #retries = 0;
  constructor(
    private readonly io: ScaleIo, private readonly stats: PreloadStat[],
    private readonly curve: CurveName, private readonly target: string, private readonly total: number, private readonly how: string, what: string,
  ) {
    io.log(`${target}: writing ${what} (${total.toLocaleString('en-US')} puts, ${how})`);
    this.#bar = io.progress && total >= progressBarPutsMin ? progressBar(io.progress, `{bar} {percentage}% | {value}/{total} puts | {rate} puts/s | eta {eta_formatted} | ${target} ${curve}`) : null;
    this.#bar?.start(total, 0, { rate: '—' });
  }
  /** Logs a failed request that is tried again. */
  retry(err: unknown, attempt: number, what: string): void {
    this.#retries++;
    this.io.log(`${this.target}: ${what} failed (attempt ${attempt} of ${preloadAttemptsMax}), trying again: ${err instanceof Error ? err.message : String(err)}`);
  }
  add(puts: number): void {
    this.#done += puts;
    this.#bar?.update(this.#done, { rate: Math.round(this.#done / ((performance.now() - this.#start) / 1000)).toLocaleString('en-US') });
  }
  finish(): PreloadStat {
    this.#bar?.stop();
    const seconds = (performance.now() - this.#start) / 1000;
    const how = this.#retries ? `${this.how}; ${this.#retries} request${this.#retries === 1 ? '' : 's'} retried` : this.how;
    const stat = { curve: this.curve, target: this.target, puts: this.#done, seconds, putsPerS: this.#done / Math.max(seconds, 1e-9), how };
    if (this.total > 0) {
      this.stats.push(stat);
      this.io.log(`${this.target}: wrote ${this.#done.toLocaleString('en-US')} puts in ${fmtDuration(seconds)} (${fmtNumber(stat.putsPerS)} puts/s)`);
    }
    return stat;
  }
}

/** "at the 850 puts/s measured here, 1,000,000 would take about 20 min", from this run's preloads of the target. */
function estimate(stats: readonly PreloadStat[], curve: CurveName, target: string, puts: number): string {
  const mine = stats.filter((s) => s.curve === curve && s.target === target);
  const seconds = mine.reduce((n, s) => n + s.seconds, 0);
  const done = mine.reduce((n, s) => n + s.puts, 0);
  if (seconds <= 0 || done === 0) return '';
  const rate = done / seconds;
  return `; at the ${fmtNumber(rate)} puts/s of its preload here, ${puts.toLocaleString('en-US')} would take about ${fmtDuration(puts / rate)}`;
}

/**
 * For each round of a key's history, the round a read at its ref must return: the newest version written
 * at that ref. Refs are unique per write (etcd revisions) or shared by the writes of one multicast batch
 * (Squall timestamps); when shared, the newest is the last in write order, known when the rounds were
 * written in order (`ordered`). Null when refs are shared and the order is not known.
 */
export function newestRoundAtRef(refs: readonly unknown[], ordered: boolean): Uint32Array | null {
  const last = new Map<unknown, number>();
  for (let round = 0; round < refs.length; round++) {
    if (!ordered && last.has(refs[round])) return null;
    last.set(refs[round], round);
  }
  const out = new Uint32Array(refs.length);
  for (let round = 0; round < refs.length; round++) out[round] = last.get(refs[round])!;
  return out;
}

/** Context of the curves that share one set of opened targets. */
interface CurveRun {
  o: ScaleOptions;
  io: ScaleIo;
  preloads: PreloadStat[];
}

/** Reads at a past ref of one key while its history grows to each point. */
export async function historyCurve({ o, io, preloads }: CurveRun, target: KvTarget): Promise<ScalePoint[]> {
  const getPast = target.getPast?.bind(target);
  if (!getPast) return notApplicable('history', target, o.versions, io);
  const cap = isPeerTarget(target.name) ? o.versionsMaxPeer : Infinity;
  const key = `s-hist-${randomBytes(4).toString('hex')}`;
  const base = randomBytes(o.valueBytes);
  const refs: unknown[] = [];
  const points: ScalePoint[] = [];
  const putVersions = target.putVersions?.bind(target);
  for (const versions of o.versions) {
    if (versions > cap) {
      const why = `skipped: above --versions-max-peer ${cap.toLocaleString('en-US')} (${putVersions ? '' : 'no batch can repeat a key: '}one put per version${estimate(preloads, 'history', target.name, versions)})`;
      io.log(`history ${target.name} x=${versions}: ${why}`);
      points.push(skippedPoint('history', target.name, versions, why));
      continue;
    }
    const from = refs.length;
    if (putVersions) {
      const chunk = requestEntriesFor(target, o.valueBytes, o.preloadBatch);
      const p = new Preload(io, preloads, 'history', target.name, versions - from, `batches of ${chunk} versions, one at a time`, `versions ${from}..${versions - 1} of one key`);
      for (let first = from; first < versions; first += chunk) {
        const values = Array.from({ length: Math.min(chunk, versions - first) }, (_, i) => tagged(base, first + i));
        const got = await withRetries(preloadAttemptsMax, preloadRetryPauseMs, () => putVersions(key, values),
          (err, attempt) => p.retry(err, attempt, `the batch of versions ${first}..${first + values.length - 1} (some may be written twice: older copies, never read)`));
        if (got.length !== values.length) throw new Error(`${target.name}: putVersions returned ${got.length} refs for ${values.length} values`);
        for (let i = 0; i < got.length; i++) refs[first + i] = got[i];
        p.add(values.length);
      }
      p.finish();
    } else {
      const p = new Preload(io, preloads, 'history', target.name, versions - from, `single puts, ${o.writeConcurrency} in flight`, `versions ${from}..${versions - 1} of one key`);
      let next = from;
      const writer = async () => {
        while (next < versions) {
          const round = next++;
          refs[round] = await withRetries(preloadAttemptsMax, preloadRetryPauseMs, () => target.put(key, tagged(base, round)), (err, attempt) => p.retry(err, attempt, `version ${round}`));
          p.add(1);
        }
      };
      await Promise.all(Array.from({ length: o.writeConcurrency }, writer));
      p.finish();
    }
    const newest = newestRoundAtRef(refs, putVersions !== undefined);
    if (!newest) io.log(`history ${target.name}: versions written concurrently share refs; reads are checked to return a version written at the ref asked`);
    const read: Operation = async () => {
      const round = randomIndex(versions);
      const value = await getPast(key, refs[round]);
      if (value === null) throw new Error(`${key}: nothing at the ref of version ${round}`);
      const tag = tagOf(value);
      if (tag !== null && (newest ? tag !== newest[round] : refs[tag] !== refs[round])) {
        throw new Error(`${key}: read version ${tag} at the ref of version ${round}${newest ? ` (expected ${newest[round]}, the newest at that ref)` : ''}`);
      }
      return 1;
    };
    points.push(await measurePoint(o, 'history', target, versions, read, io, { concurrency: o.concurrency }));
  }
  return points;
}

/** Reads at a past ref (the ref of the key's write) while the number of keys grows to each point. */
export async function keysCurve({ o, io, preloads }: CurveRun, target: KvTarget): Promise<ScalePoint[]> {
  const getPast = target.getPast?.bind(target);
  if (!getPast) return notApplicable('keys', target, o.keyCounts, io);
  const cap = isPeerTarget(target.name) ? o.keysMaxPeer : Infinity;
  const prefix = `s-keys-${randomBytes(4).toString('hex')}`;
  const value = tagged(randomBytes(o.keysValueBytes), 0);
  const batchEntries = batchEntriesFor(target, o.keysValueBytes, o.preloadBatch);
  const refs: unknown[] = [];
  const points: ScalePoint[] = [];
  for (const keys of o.keyCounts) {
    if (keys > cap) {
      const why = `skipped: above --keys-max-peer ${cap.toLocaleString('en-US')}${estimate(preloads, 'keys', target.name, keys)}`;
      io.log(`keys ${target.name} x=${keys}: ${why}`);
      points.push(skippedPoint('keys', target.name, keys, why));
      continue;
    }
    const from = refs.length;
    // slots filled in order first (a dense array), then by whichever request finishes
    for (let i = from; i < keys; i++) refs.push(null);
    const how = batchEntries > 1 ? `batches of ${batchEntries} keys, ${o.writeConcurrency} in flight` : `single puts, ${o.writeConcurrency} in flight`;
    const p = new Preload(io, preloads, 'keys', target.name, keys - from, how, `keys ${from}..${keys - 1} (${formatSize(o.keysValueBytes)} values)`);
    await writeKeys(target, prefix, from, keys, value, {
      batchEntries,
      concurrency: o.writeConcurrency,
      attempts: preloadAttemptsMax,
      retryPauseMs: preloadRetryPauseMs,
      onRetry: (err, attempt) => p.retry(err, attempt, 'a request'),
      onWritten: (first, count, ref) => {
        for (let i = first; i < first + count; i++) refs[i] = ref;
        p.add(count);
      },
    });
    p.finish();
    const read: Operation = async () => {
      const i = randomIndex(keys);
      const found = await getPast(keyName(prefix, i), refs[i]);
      if (found === null || found.length !== o.keysValueBytes) throw new Error(`${keyName(prefix, i)}: not found at its ref`);
      return 1;
    };
    points.push(await measurePoint(o, 'keys', target, keys, read, io, { concurrency: o.concurrency }));
  }
  return points;
}

/** Single puts as the value size grows. */
export async function sizeCurve({ o, io }: CurveRun, target: KvTarget): Promise<ScalePoint[]> {
  const points: ScalePoint[] = [];
  for (const size of o.sizesBytes) {
    const why = unsupported(target, { op: 'put', sizeBytes: size, batch: 1, concurrency: o.concurrency }, o.keys);
    if (why) {
      io.log(`size ${target.name} x=${size}: skipped: ${why}`);
      points.push(skippedPoint('size', target.name, size, `skipped: ${why}`));
      continue;
    }
    const op = operationFor(target, { op: 'put', sizeBytes: size, batch: 1, concurrency: o.concurrency }, `s-size${size}`, o.keys, randomBytes(size), null);
    points.push(await measurePoint(o, 'size', target, size, op, io, { concurrency: o.concurrency }));
  }
  return points;
}

function notApplicable(curve: CurveName, target: KvTarget, xs: readonly number[], io: ScaleIo): ScalePoint[] {
  io.log(`${curve} ${target.name}: skipped: no reads at a past version`);
  return xs.map((x) => skippedPoint(curve, target.name, x, 'skipped: no reads at a past version'));
}

/**
 * Put throughput as the copies of the data grow: per point, the targets are opened at that size (a fresh
 * local Squall cluster of N members with N replicas, peers with N copies) and closed after. With --url
 * there is no Squall cluster to resize: Squall's points are skipped.
 */
export async function replicasCurve(o: ScaleOptions, io: ScaleIo): Promise<ScalePoint[]> {
  const points: ScalePoint[] = [];
  const skipSquall = o.url !== undefined;
  const names = o.replicasTargets.filter((name) => !(skipSquall && targetRegistry[name]?.squall));
  for (const replicas of o.replicaCounts) {
    if (skipSquall) {
      for (const name of o.replicasTargets.filter((n) => targetRegistry[n]?.squall)) {
        for (const batch of o.replicasBatches) points.push(skippedPoint('replicas', name, replicas, 'skipped: --url given (the curve needs clusters the bench starts at each size)', batch));
      }
    }
    if (names.length === 0) continue;
    io.log(`replicas: ${replicas} cop${replicas === 1 ? 'y' : 'ies'} of the data: opening ${names.join(', ')}`);
    let opened: OpenedTargets;
    try {
      opened = await openTargets({
        names, ...(o.profileDir !== undefined ? { profileDir: o.profileDir } : {}), peersDir: o.peersDir,
        concurrency: o.replicasConcurrency, clusterSize: replicas, log: io.log,
      });
    } catch (err) {
      const why = `failed: could not start or open the targets at ${replicas}: ${err instanceof Error ? err.message : String(err)}`;
      io.log(`replicas x=${replicas}: ${why}`);
      for (const name of names) for (const batch of o.replicasBatches) points.push(skippedPoint('replicas', name, replicas, why, batch));
      continue;
    }
    try {
      const base = randomBytes(o.replicasSizeBytes);
      for (const batch of o.replicasBatches) {
        for (const target of opened.targets) {
          const cell = { op: 'put' as const, sizeBytes: o.replicasSizeBytes, batch, concurrency: o.replicasConcurrency };
          const why = unsupported(target, cell, o.keys);
          if (why) {
            io.log(`replicas ${seriesName({ target: target.name, batch })} x=${replicas}: skipped: ${why}`);
            points.push(skippedPoint('replicas', target.name, replicas, `skipped: ${why}`, batch));
            continue;
          }
          const op = operationFor(target, cell, `s-rep${batch}`, o.keys, base, null);
          points.push(await measurePoint(o, 'replicas', target, replicas, op, io, { concurrency: o.replicasConcurrency, batch }));
        }
      }
    } finally {
      await opened.close();
    }
  }
  return points;
}

type SharedCurve = Exclude<CurveName, 'replicas'>;

const sharedCurves: Record<SharedCurve, (run: CurveRun, target: KvTarget) => Promise<ScalePoint[]>> = { history: historyCurve, keys: keysCurve, size: sizeCurve };

interface CurveLook {
  title: (o: ScaleOptions) => string;
  xTitle: string;
  chart: 'latency' | 'throughput';
  yLog: boolean;
}

const looks: Record<CurveName, CurveLook> = {
  history: { title: (o) => `read at a past version/time vs history depth of the key (${formatSize(o.valueBytes)} values, concurrency ${o.concurrency})`, xTitle: 'versions of the key', chart: 'latency', yLog: false },
  keys: { title: (o) => `read at a past version/time vs number of keys (${formatSize(o.keysValueBytes)} values, concurrency ${o.concurrency})`, xTitle: 'keys', chart: 'latency', yLog: false },
  size: { title: (o) => `durable put vs value size (concurrency ${o.concurrency})`, xTitle: 'value size (bytes)', chart: 'latency', yLog: true },
  replicas: { title: (o) => `put throughput vs replicas (${formatSize(o.replicasSizeBytes)} values, concurrency ${o.replicasConcurrency})`, xTitle: 'copies of the data (replicas)', chart: 'throughput', yLog: true },
};

export interface ScaleResult {
  points: ScalePoint[];
  preloads: PreloadStat[];
}

export async function runScale(o: ScaleOptions, io: ScaleIo): Promise<ScaleResult> {
  const points: ScalePoint[] = [];
  const preloads: PreloadStat[] = [];
  const shared = o.curves.filter((c): c is SharedCurve => c !== 'replicas');
  if (shared.length > 0) {
    const opened = await openTargets({ names: o.targets, ...(o.url !== undefined ? { squallUrl: o.url } : {}), ...(o.profileDir !== undefined ? { profileDir: o.profileDir } : {}), peersDir: o.peersDir, concurrency: Math.max(o.concurrency, o.writeConcurrency, 16), clusterSize: o.clusterSize, log: io.log });
    try {
      for (const curve of shared) for (const target of opened.targets) points.push(...(await sharedCurves[curve]({ o, io, preloads }, target)));
    } finally {
      await opened.close();
    }
  }
  if (o.curves.includes('replicas')) points.push(...(await replicasCurve(o, io)));
  return { points, preloads };
}

/** Writes <out>.csv and <out>-<curve>.svg/.png; returns the files written. */
export async function writeScaleOutputs(points: readonly ScalePoint[], o: ScaleOptions): Promise<string[]> {
  mkdirSync(dirname(o.out), { recursive: true });
  const files = [`${o.out}.csv`];
  writeFileSync(files[0]!, toCsv(scaleColumns, points));
  for (const curve of o.curves) {
    const curvePoints = points.filter((p) => p.curve === curve && p.note === '').map((p) => ({ ...p, target: seriesName(p) }));
    if (curvePoints.length === 0) continue;
    const look = looks[curve];
    const spec = look.chart === 'latency'
      ? latencyCurveSpec(look.title(o), look.xTitle, curvePoints, { yLog: look.yLog })
      : throughputCurveSpec(look.title(o), look.xTitle, curvePoints, { yLog: look.yLog });
    const svg = await renderSvg(spec);
    writeFileSync(`${o.out}-${curve}.svg`, svg);
    writeFileSync(`${o.out}-${curve}.png`, svgToPng(svg));
    files.push(`${o.out}-${curve}.svg`, `${o.out}-${curve}.png`);
  }
  return files;
}

/** The printed report: the points, what each target guaranteed, the skipped points and the preload rates. */
export function formatScale(points: readonly ScalePoint[], preloads: readonly PreloadStat[]): string {
  const measured = points.filter((p) => p.note === '');
  const skipped = points.filter((p) => p.note !== '');
  const out = [table(['curve', 'target', 'x', 'p50 ms', 'p99 ms', 'ops/s', 'errors'], measured.map((p) => [p.curve, seriesName(p), p.x.toLocaleString('en-US'), fmtNumber(p.p50_ms), fmtNumber(p.p99_ms), fmtNumber(p.ops_per_s), p.errors ? String(p.errors) : '']))];
  const guarantees = [...new Set(measured.map((p) => `${p.curve} ${p.target}${p.curve === 'replicas' ? ` x=${p.x}` : ''}: ${p.durability}`))];
  if (guarantees.length) out.push('', 'guarantees:', ...guarantees.map((g) => `  ${g}`));
  if (skipped.length) out.push('', 'points not measured:', ...skipped.map((p) => `  ${p.curve} ${seriesName(p)} x=${p.x.toLocaleString('en-US')}: ${p.note}`));
  if (preloads.length) {
    out.push('', 'preloads:', table(['curve', 'target', 'puts', 'seconds', 'puts/s', 'how'], preloads.map((s) => [s.curve, s.target, s.puts.toLocaleString('en-US'), s.seconds.toFixed(1), fmtNumber(s.putsPerS), s.how])));
  }
  return out.join('\n');
}

export async function main(argv: string[]): Promise<void> {
  const o = parseScaleOptions(argv);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const machine = machineInfo();
  const { points, preloads } = await runScale(o, { log, progress: o.progress ? process.stderr : null });
  const files = await writeScaleOutputs(points, o);
  process.stdout.write(`\nnpm run bench -- scale ${argv.join(' ')}\n${formatMachine(machine, points.map((p) => ({ load_1m: p.load_1m })))}\n\n`);
  process.stdout.write(`${formatScale(points, preloads)}\n\nwrote ${files.join(', ')}\n`);
}
