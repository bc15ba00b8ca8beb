import { Command, InvalidArgumentError, Option } from 'commander';
import { defaultPeersDir } from '../scripts/peers/state.js';
import { allOps, type Op } from './target.js';
import { defaultTargets, targetRegistry } from './targets/registry.js';

/** Options of `npm run bench -- kv`. Every limit is named here with its default. */
export interface KvOptions {
  targets: string[];
  /** Target the ratio columns compare against (Squall); no ratio columns when it is not in the run. */
  baseline: string;
  ops: Op[];
  sizesBytes: number[];
  concurrencies: number[];
  /** Entries per put request; 1 = single puts. Only put rows are batched. */
  batches: number[];
  /** Measured time per run of a row. */
  seconds: number;
  /** Unmeasured time before each run of a row (JIT, connections, caches). */
  warmupSeconds: number;
  runs: number;
  /** Keys a row spreads its operations over (get and get-past rows may use fewer, see preloadBytesMax). */
  keys: number;
  /** Versions written per key before a get-past row; reads pick one of them at random. */
  versions: number;
  /** Cap on the bytes written to preload one row's keys (keys × versions × size); fewer keys when over. */
  preloadBytesMax: number;
  /** A running Squall node. */
  /** A running Squall node; absent: the bench starts a local cluster. */
  url?: string;
  /** CPU profiles of the members of the Squall cluster the bench starts go there. */
  profileDir?: string;
  /** Copies of the data each system keeps: etcd members, Redis primary + replicas (and Squall replicas). */
  clusterSize: number;
  /** Where `npm run peers -- start` recorded running peers; the bench starts its own when none run there. */
  peersDir: string;
  json?: string;
  progress: boolean;
}

const units: Record<string, number> = { '': 1, b: 1, k: 1024, ki: 1024, kib: 1024, kb: 1000, m: 1024 ** 2, mi: 1024 ** 2, mib: 1024 ** 2, mb: 1000 ** 2, g: 1024 ** 3, gi: 1024 ** 3, gib: 1024 ** 3, gb: 1000 ** 3 };

/** "100", "1KiB", "1k", "64KiB", "1MiB", "1.5MB": binary for k/Ki/KiB, decimal for KB/MB/GB. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const factor = m ? units[m[2]!.toLowerCase()] : undefined;
  if (!m || factor === undefined) throw new InvalidArgumentError(`'${text}' is not a size (examples: 100, 1KiB, 64KiB, 1MiB)`);
  const bytes = Number(m[1]) * factor;
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new InvalidArgumentError(`size '${text}' must be a whole number of bytes ≥ 1`);
  return bytes;
}

/** "1KiB" for 1024, "100 B" for 100: how sizes are printed. */
export function formatSize(bytes: number): string {
  for (const [unit, factor] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor} ${unit}`;
  }
  return `${bytes} B`;
}

export function parsePositiveInt(text: string): number {
  const n = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`'${text}' is not a whole number ≥ 1`);
  return n;
}

export function parsePositiveNumber(text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`'${text}' is not a number > 0`);
  return n;
}

/** A comma-separated list, each item parsed; duplicates dropped, order kept. */
export function parseList<T>(parse: (item: string) => T): (text: string) => T[] {
  return (text) => {
    const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
    if (items.length === 0) throw new InvalidArgumentError('empty list');
    return [...new Set(items.map(parse))];
  };
}

export function parseTarget(text: string): string {
  if (!(text in targetRegistry)) throw new InvalidArgumentError(`'${text}' is not a registered target (${Object.keys(targetRegistry).join(', ')}; add new ones in bench/targets/registry.ts)`);
  return text;
}

export function parseOp(text: string): Op {
  if (!(allOps as readonly string[]).includes(text)) throw new InvalidArgumentError(`'${text}' is not a workload (${allOps.join(', ')})`);
  return text as Op;
}

/** The options every suite that drives targets shares: which targets, where Squall and the peers are. */
export function addTargetOptions(command: Command): Command {
  return command
    .option('--targets <list>', `targets in the order to run (registered: ${Object.keys(targetRegistry).join(', ')})`, parseList(parseTarget), defaultTargets())
    .option('--url <url>', 'a running Squall node or cluster member (default: the bench starts a local Squall cluster of --cluster members)')
    .option('--cluster <n>', 'copies of the data per system: Squall members and replicas, etcd members, Redis primary + replicas', parsePositiveInt, 3)
    .option('--profile <dir>', 'members of the Squall cluster the bench starts write V8 CPU profiles (.cpuprofile) to DIR')
    .option('--peers-dir <dir>', "peers started by 'npm run peers -- start' (else the bench starts its own)", defaultPeersDir);
}

/** How long and how often each measurement runs. */
export function addRunOptions(command: Command, defaults: { seconds: number; warmupSeconds: number; runs: number }): Command {
  return command
    .option('--seconds <s>', 'measured seconds per run', parsePositiveNumber, defaults.seconds)
    .option('--warmup <s>', 'unmeasured seconds before each run', parsePositiveNumber, defaults.warmupSeconds)
    .option('--runs <n>', 'runs per measurement (medians are reported)', parsePositiveInt, defaults.runs);
}

export function kvCommand(): Command {
  const command = new Command('kv').description('key-value workloads against Squall and peer systems (etcd, Redis), side by side');
  addTargetOptions(command)
    .option('--baseline <name>', 'target the ratio columns compare against', 'squall')
    .option('--op <list>', `workloads: ${allOps.join(', ')}`, parseList(parseOp), [...allOps])
    .option('--size <list>', 'value sizes (100, 1KiB, 64KiB, 1MiB, ...)', parseList(parseSize), [100, 1024, 64 * 1024, 1024 * 1024])
    .option('--concurrency <list>', 'operations in flight (closed-loop workers)', parseList(parsePositiveInt), [1, 16, 64])
    .option('--batch <list>', 'puts per request for put rows (1 = single requests)', parseList(parsePositiveInt), [1]);
  addRunOptions(command, { seconds: 5, warmupSeconds: 1, runs: 3 })
    .option('--keys <n>', 'keys each row spreads its operations over', parsePositiveInt, 1000)
    .option('--versions <n>', 'versions per key written before get-past rows', parsePositiveInt, 10)
    .option('--preload-mib <n>', 'cap on MiB written to preload one row (fewer keys when over)', parsePositiveInt, 256)
    .option('--json <file>', 'write the rows as a JSON array')
    .addOption(new Option('--no-progress', 'no progress bar'));
  return command;
}

/** Parses argv (without the suite name) into options; throws a CommanderError on bad input when exitOverride is set. */
export function parseKvOptions(argv: readonly string[], command = kvCommand()): KvOptions {
  command.parse([...argv], { from: 'user' });
  const o = command.opts<{
    targets: string[]; baseline: string; op: Op[]; size: number[]; concurrency: number[]; batch: number[];
    seconds: number; warmup: number; runs: number; keys: number; versions: number; preloadMib: number;
    url?: string; cluster: number; peersDir: string; profile?: string; json?: string; progress: boolean;
  }>();
  return {
    targets: o.targets,
    baseline: o.baseline,
    ops: o.op,
    sizesBytes: o.size,
    concurrencies: o.concurrency,
    batches: o.batch,
    seconds: o.seconds,
    warmupSeconds: o.warmup,
    runs: o.runs,
    keys: o.keys,
    versions: o.versions,
    preloadBytesMax: o.preloadMib * 1024 * 1024,
    ...(o.url !== undefined ? { url: o.url } : {}),
    ...(o.profile !== undefined ? { profileDir: o.profile } : {}),
    clusterSize: o.cluster,
    peersDir: o.peersDir,
    ...(o.json !== undefined ? { json: o.json } : {}),
    progress: o.progress,
  };
}
