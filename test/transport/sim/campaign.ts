import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { checkRun } from './checker.js';
import { explain } from './explain.js';
import { paramsForSeed, SimCluster, type SimParams } from './cluster.js';

/** One simulated run: its parameters, whether every property held, and what went wrong. */
export interface SeedResult {
  readonly seed: number;
  readonly params: SimParams;
  readonly failures: readonly string[];
  readonly views: number;
  readonly delivered: number;
  readonly events: number;
  readonly simulatedS: number;
  readonly faultLog: readonly string[];
  /** With `explain`: the account of the run (explain.ts). */
  readonly explanation?: string;
}

export async function runSeed(seed: number, overrides: Partial<SimParams> = {}, withExplanation = false): Promise<SeedResult> {
  const params = paramsForSeed(seed, overrides);
  const cluster = new SimCluster(params);
  try {
    await cluster.run();
  } catch (e) {
    cluster.fail(`exception: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }
  const failures = cluster.failures.length > 0 ? [...cluster.failures] : checkRun(cluster);
  let delivered = 0;
  const views = new Set<number>();
  for (const t of cluster.traces) {
    for (const v of t.views) views.add(v.vid);
    for (const list of t.delivered.values()) delivered += list.length;
  }
  return {
    seed,
    params,
    failures,
    views: views.size,
    delivered,
    events: cluster.sched.events,
    simulatedS: cluster.sched.nowUs / 1e6,
    faultLog: cluster.faultLog,
    ...(withExplanation ? { explanation: explain(cluster) } : {}),
  };
}

export function describe(r: SeedResult): string {
  const p = r.params;
  return (
    `seed ${r.seed}: ${p.members} members + ${p.spares} spares, ${p.shards} shards × ${p.replicas} replicas, ` +
    `${r.views} views, ${r.delivered} deliveries, ${r.events} events, ${r.simulatedS.toFixed(1)} s simulated`
  );
}

/** Seeds of CI run: SQUALL_SIM_SEED_BASE shifts the range to explore new schedules (default 1). */
export function seedBase(): number {
  const base = Number(process.env.SQUALL_SIM_SEED_BASE ?? 1);
  return Number.isSafeInteger(base) ? base : 1;
}

interface TapLike {
  pass(message: string): void;
  fail(message: string): void;
  comment(message: string): void;
  teardown(fn: () => void): void;
}

interface WorkerLine {
  readonly seed: number;
  readonly summary: string;
  readonly failures: readonly string[];
  readonly views: number;
  readonly delivered: number;
}

/** Seeds of one child process; it runs without coverage instrumentation (which slows it several times). */
function runWorker(t: TapLike, from: number, count: number, timeoutMs: number): Promise<WorkerLine[]> {
  const env = { ...process.env };
  delete env.NODE_V8_COVERAGE;
  const worker = fileURLToPath(new URL('./worker.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', worker, '--from', String(from), '--count', String(count)], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      reject(new Error(`seeds ${from}..${from + count - 1} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const lines = out.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as WorkerLine);
      if (code !== 0 || lines.length !== count) reject(new Error(`seed worker exited with ${code} after ${lines.length}/${count} seeds\n${err.slice(-2000)}`));
      else resolve(lines);
    });
  });
}

/**
 * Run `count` seeds from `from` in `workers` child processes as one tap test: every failing seed is
 * reported with its replay command.
 */
export async function runCampaign(t: TapLike, from: number, count: number, workers = 2, timeoutMs = 100_000): Promise<void> {
  const started = performance.now();
  const per = Math.ceil(count / workers);
  const parts: Array<Promise<WorkerLine[]>> = [];
  for (let w = 0; w < workers; w++) {
    const a = from + w * per;
    const n = Math.min(per, from + count - a);
    if (n > 0) parts.push(runWorker(t, a, n, timeoutMs));
  }
  const lines = (await Promise.all(parts)).flat();
  let failed = 0;
  for (const r of lines) {
    if (r.failures.length === 0) continue;
    failed++;
    t.fail(`${r.summary}\n${r.failures.map((f) => `  - ${f}`).join('\n')}\n  replay: npm run sim -- --seed ${r.seed} --verbose`);
  }
  const views = lines.reduce((n, r) => n + r.views, 0);
  const delivered = lines.reduce((n, r) => n + r.delivered, 0);
  t.comment(`${count} seeds (${from}..${from + count - 1}): ${failed} failed, ${views} views, ${delivered} deliveries, ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (failed === 0) t.pass(`all ${count} seeds keep every property`);
}
