/**
 * `npm run bench -- scale`: scaling curves, each point the median of --runs measured runs:
 *  - history: cost of a read at a past ref (etcd: range at a revision) as one key's history grows;
 *  - keys: cost of a read at a past ref as the number of keys grows;
 *  - size: cost of a put as the value size grows.
 * Written as CSV (<out>.csv) and as one chart per curve (<out>-<curve>.svg and .png), over every target
 * in the registry that supports the curve. (Delivered throughput as replicas grow needs targets started at
 * several cluster sizes: it comes with the Squall cluster.)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Command } from 'commander';
import { latencyCurveSpec, renderSvg, svgToPng, type CurvePoint } from './chart.js';
import { measureRun, type Operation, type RunSample } from './closed-loop.js';
import { toCsv } from './csv.js';
import { addRunOptions, addTargetOptions, formatSize, parseList, parsePositiveInt, parseSize } from './kv-options.js';
import { openTargets } from './open-targets.js';
import { fmtNumber, formatMachine, machineInfo, table } from './report.js';
import { median } from './stats.js';
import type { KvTarget } from './target.js';
import { keyName, operationFor, preload, randomIndex, tagOf, tagged } from './workload.js';

export const curveNames = ['history', 'keys', 'size'] as const;
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
  /** Value size of the history and keys curves. */
  valueBytes: number;
  concurrency: number;
  /** Puts in flight while growing history (a key cannot repeat in one batch, so these are single puts). */
  writeConcurrency: number;
  seconds: number;
  warmupSeconds: number;
  runs: number;
  /** Keys the size curve's puts spread over. */
  keys: number;
  /** Output path prefix. */
  out: string;
  url?: string;
  profileDir?: string;
  clusterSize: number;
  peersDir: string;
}

export interface ScalePoint extends CurvePoint {
  [column: string]: string | number | null;
  curve: CurveName;
  runs: number;
  errors: number;
  load_1m: number | null;
}

const scaleColumns = ['curve', 'target', 'x', 'p50_ms', 'p99_ms', 'ops_per_s', 'runs', 'errors', 'load_1m'] as const;

export function scaleCommand(): Command {
  const command = new Command('scale').description('scaling curves (CSV + SVG/PNG charts): past reads vs history depth and key count, puts vs value size');
  addTargetOptions(command)
    .option('--curves <list>', `curves: ${curveNames.join(', ')}`, parseList(parseCurve), [...curveNames])
    .option('--versions <list>', 'history curve points: versions of one key', parseList(parsePositiveInt), [10, 100, 1000, 10_000])
    .option('--key-counts <list>', 'keys curve points: number of keys', parseList(parsePositiveInt), [1000, 10_000, 100_000])
    .option('--size <list>', 'size curve points: value sizes', parseList(parseSize), [100, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576])
    .option('--value-size <size>', 'value size for the history and keys curves', parseSize, 1024)
    .option('--concurrency <n>', 'operations in flight while measuring', parsePositiveInt, 1)
    .option('--write-concurrency <n>', 'puts in flight while growing a history', parsePositiveInt, 16);
  addRunOptions(command, { seconds: 2, warmupSeconds: 0.5, runs: 3 })
    .option('--keys <n>', 'keys the size curve spreads its puts over', parsePositiveInt, 1000)
    .option('--out <prefix>', 'output path prefix', 'bench/out/scale');
  return command;
}

function parseCurve(text: string): CurveName {
  if (!(curveNames as readonly string[]).includes(text)) throw new Error(`'${text}' is not a curve (${curveNames.join(', ')})`);
  return text as CurveName;
}

export function parseScaleOptions(argv: readonly string[], command = scaleCommand()): ScaleOptions {
  command.parse([...argv], { from: 'user' });
  const o = command.opts<{
    targets: string[]; curves: CurveName[]; versions: number[]; keyCounts: number[]; size: number[]; valueSize: number;
    concurrency: number; writeConcurrency: number; seconds: number; warmup: number; runs: number; keys: number; out: string; url?: string; cluster: number; peersDir: string; profile?: string;
  }>();
  const ascending = (xs: number[]) => [...xs].sort((a, b) => a - b);
  return {
    targets: o.targets, curves: o.curves, versions: ascending(o.versions), keyCounts: ascending(o.keyCounts), sizesBytes: ascending(o.size),
    valueBytes: o.valueSize, concurrency: o.concurrency, writeConcurrency: o.writeConcurrency, seconds: o.seconds, warmupSeconds: o.warmup,
    runs: o.runs, keys: o.keys, out: o.out, ...(o.url !== undefined ? { url: o.url } : {}), clusterSize: o.cluster, peersDir: o.peersDir,
    ...(o.profile !== undefined ? { profileDir: o.profile } : {}),
  };
}

/** A point from its runs: medians. */
export function pointFromRuns(curve: CurveName, target: string, x: number, samples: readonly RunSample[]): ScalePoint {
  const defined = (xs: (number | null)[]) => xs.filter((v): v is number => v !== null);
  return {
    curve, target, x,
    p50_ms: median(defined(samples.map((s) => s.p50Ms))),
    p99_ms: median(defined(samples.map((s) => s.p99Ms))),
    ops_per_s: median(samples.map((s) => s.opsPerS)),
    runs: samples.length,
    errors: samples.reduce((n, s) => n + s.errors, 0),
    load_1m: median(samples.map((s) => s.load1m)),
  };
}

async function measurePoint(o: ScaleOptions, curve: CurveName, target: KvTarget, x: number, op: Operation, log: (l: string) => void): Promise<ScalePoint> {
  const samples: RunSample[] = [];
  for (let run = 0; run < o.runs; run++) {
    samples.push(await measureRun(op, { concurrency: o.concurrency, warmupMs: o.warmupSeconds * 1000, durationMs: o.seconds * 1000 }));
  }
  const point = pointFromRuns(curve, target.name, x, samples);
  log(`${curve} ${target.name} x=${x}: p50 ${fmtNumber(point.p50_ms)} ms, p99 ${fmtNumber(point.p99_ms)} ms, ${fmtNumber(point.ops_per_s)} ops/s${point.errors ? `, ${point.errors} errors (${samples.at(-1)?.lastError})` : ''}`);
  return point;
}

/** Reads at a past ref of one key while its history grows to each point. */
async function historyCurve(o: ScaleOptions, target: KvTarget, log: (l: string) => void): Promise<ScalePoint[]> {
  const getPast = target.getPast?.bind(target);
  if (!getPast) return [];
  const key = `s-hist-${randomBytes(4).toString('hex')}`;
  const base = randomBytes(o.valueBytes);
  const refs: unknown[] = [];
  const points: ScalePoint[] = [];
  for (const versions of o.versions) {
    let next = refs.length;
    const writer = async () => {
      while (next < versions) {
        const round = next++;
        refs[round] = await target.put(key, tagged(base, round));
      }
    };
    log(`${target.name}: writing versions ${refs.length}..${versions - 1} of one key`);
    await Promise.all(Array.from({ length: o.writeConcurrency }, writer));
    const read: Operation = async () => {
      const round = randomIndex(versions);
      const value = await getPast(key, refs[round]);
      if (value === null || (tagOf(value) ?? round) !== round) throw new Error(`${key}: wrong version at the ref of version ${round}`);
      return 1;
    };
    points.push(await measurePoint(o, 'history', target, versions, read, log));
  }
  return points;
}

/** Reads at a past ref (the ref of the key's write) while the number of keys grows to each point. */
async function keysCurve(o: ScaleOptions, target: KvTarget, log: (l: string) => void): Promise<ScalePoint[]> {
  const getPast = target.getPast?.bind(target);
  if (!getPast) return [];
  const prefix = `s-keys-${randomBytes(4).toString('hex')}`;
  const base = randomBytes(o.valueBytes);
  const refs: unknown[] = [];
  const points: ScalePoint[] = [];
  for (const keys of o.keyCounts) {
    log(`${target.name}: writing keys ${refs.length}..${keys - 1}`);
    const added = await preload(target, prefix, keys, 1, base, refs.length);
    for (const r of added) refs.push(r[0]);
    const read: Operation = async () => {
      const i = randomIndex(keys);
      const value = await getPast(keyName(prefix, i), refs[i]);
      if (value === null || value.length !== o.valueBytes) throw new Error(`${keyName(prefix, i)}: not found at its ref`);
      return 1;
    };
    points.push(await measurePoint(o, 'keys', target, keys, read, log));
  }
  return points;
}

/** Single puts as the value size grows. */
async function sizeCurve(o: ScaleOptions, target: KvTarget, log: (l: string) => void): Promise<ScalePoint[]> {
  const points: ScalePoint[] = [];
  const requestBytesMax = target.limits?.requestBytesMax ?? Infinity;
  for (const size of o.sizesBytes.filter((s) => s <= requestBytesMax)) {
    const op = operationFor(target, { op: 'put', sizeBytes: size, batch: 1, concurrency: o.concurrency }, `s-size${size}`, o.keys, randomBytes(size), null);
    points.push(await measurePoint(o, 'size', target, size, op, log));
  }
  return points;
}

const curves: Record<CurveName, { run: typeof historyCurve; title: string; xTitle: string; yLog: boolean }> = {
  history: { run: historyCurve, title: 'read at a past version/time vs history depth of the key', xTitle: 'versions of the key', yLog: false },
  keys: { run: keysCurve, title: 'read at a past version/time vs number of keys', xTitle: 'keys', yLog: false },
  size: { run: sizeCurve, title: 'durable put vs value size', xTitle: 'value size (bytes)', yLog: true },
};

export async function runScale(o: ScaleOptions, log: (l: string) => void): Promise<ScalePoint[]> {
  const opened = await openTargets({ names: o.targets, ...(o.url !== undefined ? { squallUrl: o.url } : {}), ...(o.profileDir !== undefined ? { profileDir: o.profileDir } : {}), peersDir: o.peersDir, concurrency: Math.max(o.concurrency, o.writeConcurrency, 16), clusterSize: o.clusterSize, log });
  try {
    const points: ScalePoint[] = [];
    for (const curve of o.curves) for (const target of opened.targets) points.push(...(await curves[curve].run(o, target, log)));
    return points;
  } finally {
    await opened.close();
  }
}

/** Writes <out>.csv and <out>-<curve>.svg/.png; returns the files written. */
export async function writeScaleOutputs(points: readonly ScalePoint[], o: Pick<ScaleOptions, 'out' | 'curves' | 'concurrency' | 'valueBytes'>): Promise<string[]> {
  mkdirSync(dirname(o.out), { recursive: true });
  const files = [`${o.out}.csv`];
  writeFileSync(files[0]!, toCsv(scaleColumns, points));
  for (const curve of o.curves) {
    const curvePoints = points.filter((p) => p.curve === curve);
    if (curvePoints.length === 0) continue;
    const c = curves[curve];
    const detail = curve === 'size' ? `concurrency ${o.concurrency}` : `${formatSize(o.valueBytes)} values, concurrency ${o.concurrency}`;
    const svg = await renderSvg(latencyCurveSpec(`${c.title} (${detail})`, c.xTitle, curvePoints, { yLog: c.yLog }));
    writeFileSync(`${o.out}-${curve}.svg`, svg);
    writeFileSync(`${o.out}-${curve}.png`, svgToPng(svg));
    files.push(`${o.out}-${curve}.svg`, `${o.out}-${curve}.png`);
  }
  return files;
}

export async function main(argv: string[]): Promise<void> {
  const o = parseScaleOptions(argv);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const machine = machineInfo();
  const points = await runScale(o, log);
  const files = await writeScaleOutputs(points, o);
  const lines = points.map((p) => [p.curve, p.target, String(p.x), fmtNumber(p.p50_ms), fmtNumber(p.p99_ms), fmtNumber(p.ops_per_s), p.errors ? String(p.errors) : '']);
  process.stdout.write(`\nnpm run bench -- scale ${argv.join(' ')}\n${formatMachine(machine, points.map((p) => ({ load_1m: p.load_1m })))}\n\n`);
  process.stdout.write(`${table(['curve', 'target', 'x', 'p50 ms', 'p99 ms', 'ops/s', 'errors'], lines)}\n\nwrote ${files.join(', ')}\n`);
}
