import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Store } from '../src/store/index.js';

/** Cumulative figures of this member for the dashboard, which turns two of them into rates and means. */
export interface MetricsSnapshot {
  at_ms: number;
  cpu_seconds: number;
  resident_bytes: number;
  event_loop_lag_p99_s: number;
  /** Per route: requests answered, of which 4xx and 5xx, and the sum of their latencies. */
  requests: Record<string, { count: number; client_errors: number; server_errors: number; seconds_sum: number }>;
  /** Per durability, per write stage (ordered, synced_here, durable): sum of seconds and count. */
  write_stages: Record<string, Record<string, { sum: number; count: number }>>;
}

/** Prometheus metrics of a node (GET /metrics). Gauges of shards are read when scraped. */
export class Metrics {
  readonly registry = new Registry();
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly latency: Histogram<'route'>;
  readonly #writeStages: Histogram<'stage' | 'durability'>;
  /** Event-loop delay for the dashboard (its own histogram: the default metrics reset theirs at each scrape). */
  readonly #loopDelay = monitorEventLoopDelay({ resolution: 10 });

  constructor(store: Store) {
    collectDefaultMetrics({ register: this.registry, prefix: 'squall_' });
    this.#loopDelay.enable();
    this.requests = new Counter({
      name: 'squall_http_requests_total',
      help: 'HTTP requests by method, route and status',
      labelNames: ['method', 'route', 'status'],
      registers: [this.registry],
    });
    this.latency = new Histogram({
      name: 'squall_http_request_duration_seconds',
      help: 'HTTP request latency by route (to the response head)',
      labelNames: ['route'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [this.registry],
    });
    const writeStages = new Histogram({
      name: 'squall_write_stage_seconds',
      help:
        'Writes answered by this member: "ordered" = from submission to its shard until applied here (multicast ordering); ' +
        '"durable" = from then until its durability level was met (persisted: the global persistence frontier passed it); ' +
        '"synced_here" = the part of "durable" until this member\'s own copy was synced',
      labelNames: ['stage', 'durability'],
      buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [this.registry],
    });
    store.onWriteTimed = (orderedS, syncedHereS, durableS, durability) => {
      writeStages.observe({ stage: 'ordered', durability }, orderedS);
      if (syncedHereS !== null) writeStages.observe({ stage: 'synced_here', durability }, syncedHereS);
      writeStages.observe({ stage: 'durable', durability }, durableS);
    };
    const shardGauge = (name: string, help: string, read: (s: Store['allShards'][number]) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['shard'],
        registers: [this.registry],
        collect() {
          for (const s of store.allShards) this.set({ shard: s.name }, read(s));
        },
      });
    };
    shardGauge('squall_shard_delivered_version', 'Highest version delivered on the shard', (s) => s.frontiers.deliveredVersion);
    shardGauge('squall_shard_persisted_frontier', 'Global persistence frontier of the shard (version)', (s) => s.frontiers.persistedFrontier);
    shardGauge('squall_shard_stability_lag_seconds', 'How far the stability frontier trails the clock', (s) =>
      Math.max(0, Date.now() * 1000 - s.frontiers.stabilityFrontierUs) / 1e6,
    );
    shardGauge('squall_shard_unfinished_ops', 'Operations accepted and not yet durable', (s) => s.unfinishedOps);
    shardGauge('squall_shard_overlay_keys', 'Keys with versions delivered but not yet committed', (s) => s.overlayKeys);
    shardGauge('squall_shard_log_entries', 'Versions kept in the shard log', (s) => s.log.entryCount());
    new Counter({
      name: 'squall_requests_forwarded_total',
      help: 'Calls about a shard this member does not order, forwarded to a member that does, by method (put, get, batch, ...)',
      labelNames: ['method'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [method, n] of store.forwardedCalls) this.inc({ method }, n);
      },
    });
    this.#writeStages = writeStages;
    new Gauge({
      name: 'squall_watchers',
      help: 'Open watch streams',
      registers: [this.registry],
      collect() {
        this.set(store.watch.watchers);
      },
    });
  }

  /** The figures the dashboard shows, read from the registry (cumulative since the process started). */
  async snapshot(): Promise<MetricsSnapshot> {
    const out: MetricsSnapshot = { at_ms: Date.now(), cpu_seconds: 0, resident_bytes: 0, event_loop_lag_p99_s: 0, requests: {}, write_stages: {} };
    // read from the process, not from the default metrics: prom-client updates those only when /metrics is scraped
    const cpu = process.cpuUsage();
    out.cpu_seconds = (cpu.user + cpu.system) / 1e6;
    out.resident_bytes = process.memoryUsage.rss();
    // p99 since the previous snapshot (the dashboard asks every few seconds)
    out.event_loop_lag_p99_s = this.#loopDelay.count > 0 ? this.#loopDelay.percentile(99) / 1e9 : 0;
    this.#loopDelay.reset();
    const route = (r: string): MetricsSnapshot['requests'][string] => (out.requests[r] ??= { count: 0, client_errors: 0, server_errors: 0, seconds_sum: 0 });
    for (const v of (await this.requests.get()).values) {
      const r = route(String(v.labels.route));
      const status = Number(v.labels.status);
      r.count += v.value;
      if (status >= 500) r.server_errors += v.value;
      else if (status >= 400) r.client_errors += v.value;
    }
    for (const v of (await this.latency.get()).values) {
      if (v.metricName?.endsWith('_sum')) route(String(v.labels.route)).seconds_sum += v.value;
    }
    for (const v of (await this.#writeStages.get()).values) {
      const kind = v.metricName?.endsWith('_sum') ? 'sum' : v.metricName?.endsWith('_count') ? 'count' : null;
      if (kind === null) continue;
      const byStage = (out.write_stages[String(v.labels.durability)] ??= {});
      const stage = (byStage[String(v.labels.stage)] ??= { sum: 0, count: 0 });
      stage[kind] += v.value;
    }
    return out;
  }
}
