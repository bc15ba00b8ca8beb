import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Store } from '../src/store/index.js';

/** Prometheus metrics of a node (GET /metrics). Gauges of shards are read when scraped. */
export class Metrics {
  readonly registry = new Registry();
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly latency: Histogram<'route'>;

  constructor(store: Store) {
    collectDefaultMetrics({ register: this.registry, prefix: 'squall_' });
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
    new Gauge({
      name: 'squall_watchers',
      help: 'Open watch streams',
      registers: [this.registry],
      collect() {
        this.set(store.watch.watchers);
      },
    });
  }
}
