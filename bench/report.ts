import { cpus, loadavg, totalmem } from 'node:os';
import { formatSize } from './kv-options.js';
import { median, ratio } from './stats.js';
import type { BenchRow } from './target.js';

/** The machine the figures come from, printed with them: other work on it changes the numbers. */
export interface MachineInfo {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  /** 1, 5 and 15-minute load averages. */
  loadBefore: [number, number, number];
}

export function machineInfo(): MachineInfo {
  const [l1, l5, l15] = loadavg();
  return {
    cores: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    node: process.version,
    loadBefore: [l1 ?? 0, l5 ?? 0, l15 ?? 0],
  };
}

const fmtLoad = (l: readonly number[]) => l.map((x) => x.toFixed(2)).join(' ');

export function formatMachine(m: MachineInfo, rows: readonly Pick<BenchRow, 'load_1m'>[]): string {
  const during = rows.map((r) => r.load_1m).filter((l): l is number => l !== null);
  const duringText = during.length ? `median ${median(during)!.toFixed(2)}, max ${Math.max(...during).toFixed(2)} (1-min, sampled after each run)` : 'n/a';
  return [
    `machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, node ${m.node}`,
    `load average before: ${fmtLoad(m.loadBefore)} (1/5/15 min); during: ${duringText}`,
  ].join('\n');
}

/** Numbers with about 3 significant digits, thousands separated; '—' for null. */
export function fmtNumber(x: number | null, digits = 3): string {
  if (x === null || !Number.isFinite(x)) return '—';
  if (Math.abs(x) >= 10 ** digits) return Math.round(x).toLocaleString('en-US');
  return x.toPrecision(digits);
}

export function fmtRatio(x: number | null): string {
  return x === null ? '—' : `${x.toFixed(2)}×`;
}

/** Rows of one workload: same op, size and batch. */
export function workloadKey(r: Pick<BenchRow, 'op' | 'size_bytes' | 'batch'>): string {
  return `${r.op} ${formatSize(r.size_bytes)}${r.batch > 1 ? `, batches of ${r.batch}` : ''}`;
}

/**
 * One table per workload: per concurrency, per target, ops/s, MB/s, p50, p99, and when the baseline
 * target (Squall) is in the run, its ratio to each other target in the same row of the matrix:
 * `×ops` = baseline ops/s ÷ target ops/s, `×p99` = baseline p99 ÷ target p99 (below 1 is better).
 * Under each table, the durability or consistency each target gave.
 */
export function formatTables(rows: readonly BenchRow[], baseline: string): string {
  const groups = new Map<string, BenchRow[]>();
  for (const r of rows) {
    const key = workloadKey(r);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const hasBaseline = rows.some((r) => r.target === baseline);
  const out: string[] = [];
  for (const [title, group] of groups) {
    const header = ['conc', 'target', 'ops/s', 'MB/s', 'p50 ms', 'p99 ms', ...(hasBaseline ? [`${baseline} ×ops`, `${baseline} ×p99`] : []), 'errors', 'note'];
    const lines: string[][] = [];
    for (const r of group) {
      const base = group.find((b) => b.target === baseline && b.concurrency === r.concurrency);
      const isBase = r.target === baseline;
      lines.push([
        String(r.concurrency),
        r.target,
        fmtNumber(r.ops_per_s),
        fmtNumber(r.mb_per_s),
        fmtNumber(r.p50_ms),
        fmtNumber(r.p99_ms),
        ...(hasBaseline ? [isBase ? '' : fmtRatio(ratio(base?.ops_per_s, r.ops_per_s)), isBase ? '' : fmtRatio(ratio(base?.p99_ms, r.p99_ms))] : []),
        r.errors ? String(r.errors) : '',
        r.note ?? '',
      ]);
    }
    out.push(`== ${title} (medians of ${Math.max(...group.map((r) => r.runs))} runs)`, table(header, lines));
    const guarantees = new Map(group.filter((r) => r.runs > 0).map((r) => [r.target, r.durability]));
    for (const [target, text] of guarantees) out.push(`   ${target}: ${text}`);
    out.push('');
  }
  return out.join('\n');
}

/** Plain aligned columns; numeric-looking cells right-aligned. */
export function table(header: readonly string[], lines: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const numeric = (s: string) => /^[—\d.,×-]+$/.test(s);
  const render = (cells: readonly string[]) =>
    cells.map((c, i) => (numeric(c) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [render(header), render(widths.map((w) => '-'.repeat(w))), ...lines.map(render)].join('\n');
}
