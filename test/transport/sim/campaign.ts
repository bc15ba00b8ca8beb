import { checkRun } from './checker.js';
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
}

export async function runSeed(seed: number, overrides: Partial<SimParams> = {}): Promise<SeedResult> {
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
  };
}

export function describe(r: SeedResult): string {
  const p = r.params;
  return (
    `seed ${r.seed}: ${p.members} members + ${p.spares} spares, ${p.shards} shards × ${p.replicas} replicas, ` +
    `${r.views} views, ${r.delivered} deliveries, ${r.events} events, ${r.simulatedS.toFixed(1)} s simulated`
  );
}
