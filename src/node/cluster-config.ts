import { z } from 'zod';
import { parseGroupConfig, type GroupConfig, type GroupConfigInput } from '../transport/config.js';

/**
 * A cluster file: the members (group and HTTP addresses), the layout of subgroups, shards and replicas
 * per pool type, optional pools to create at start, and overrides of the group's timings. Every member
 * reads the same file; `squall start --config FILE --id N` starts member N.
 *
 *   {"members":[{"id":1,"host":"127.0.0.1","port":7101,"httpPort":8081}, ...],
 *    "layout":{"persistent":[{"shards":2,"replicas":3}],"volatile":[{"shards":1,"replicas":3}]},
 *    "pools":[{"path":"/photos","type":"persistent"}],
 *    "group":{"heartbeatPeriodMs":100}}
 */
const SubgroupSchema = z
  .object({
    shards: z.number().int().min(1).max(256),
    replicas: z.number().int().min(1).max(64),
    /** A shard with fewer live replicas stops ordering (default 1). */
    minReplicas: z.number().int().min(1).max(64).optional(),
  })
  .strict();

export const ClusterConfigSchema = z
  .object({
    /** Checked in every link handshake so two clusters on one host never mix. */
    name: z.string().min(1).default('squall'),
    members: z
      .array(
        z
          .object({
            id: z.number().int().min(0).max(65_535),
            host: z.string().min(1),
            /** Group (multicast) port. */
            port: z.number().int().min(1).max(65_535),
            /** HTTP API port. */
            httpPort: z.number().int().min(1).max(65_535),
            /** HTTP listen address (default: host). */
            httpHost: z.string().min(1).optional(),
          })
          .strict(),
      )
      .min(1)
      .max(1024),
    layout: z
      .object({
        persistent: z.array(SubgroupSchema).min(1),
        volatile: z.array(SubgroupSchema).min(1).default([{ shards: 1, replicas: 1 }]),
      })
      .strict(),
    pools: z
      .array(
        z
          .object({
            path: z.string(),
            type: z.enum(['persistent', 'volatile']),
            subgroup: z.number().int().min(0).optional(),
            affinity: z.string().optional(),
            retain: z.object({ versions: z.number().int().min(1).optional(), seconds: z.number().int().min(1).optional() }).strict().optional(),
          })
          .strict(),
      )
      .default([]),
    /** Overrides of the group's timings and bounds (transport/config.ts): heartbeats, windows, majority rule. */
    group: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

export type ClusterConfig = z.infer<typeof ClusterConfigSchema>;

export function isClusterConfig(input: unknown): boolean {
  return typeof input === 'object' && input !== null && 'members' in input;
}

export function parseClusterConfig(input: unknown, source: string): ClusterConfig {
  const r = ClusterConfigSchema.safeParse(input);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new Error(`invalid cluster ${source}:\n${lines.join('\n')}`);
  }
  const c = r.data;
  const ids = new Set<number>();
  for (const m of c.members) {
    if (ids.has(m.id)) throw new Error(`invalid cluster ${source}: member id ${m.id} appears twice`);
    ids.add(m.id);
  }
  for (const type of ['persistent', 'volatile'] as const) {
    c.layout[type].forEach((sg, i) => {
      if (sg.replicas > c.members.length) {
        throw new Error(`invalid cluster ${source}: layout.${type}.${i}.replicas is ${sg.replicas} but the cluster has ${c.members.length} members`);
      }
    });
  }
  return c;
}

/**
 * The transport's group configuration for a cluster: subgroup 0 is the pool metadata shard, replicated on
 * every member; then the persistent and volatile subgroups, named so shard names match the store's
 * ("persistent/0/1"). All use overlapping placement: a shard's replicas come from the whole cluster, so
 * 2 shards of 3 replicas live on 3 nodes.
 */
export function groupConfigOf(c: ClusterConfig): GroupConfig {
  const subgroups: GroupConfigInput['layout']['subgroups'] = [
    { type: 'metadata', shards: 1, replicas: c.members.length, minReplicas: 1, placement: 'overlap' as const },
    ...c.layout.persistent.map((sg) => ({ type: 'persistent', shards: sg.shards, replicas: sg.replicas, placement: 'overlap' as const, ...(sg.minReplicas ? { minReplicas: sg.minReplicas } : {}) })),
    ...c.layout.volatile.map((sg) => ({ type: 'volatile', shards: sg.shards, replicas: sg.replicas, placement: 'overlap' as const, ...(sg.minReplicas ? { minReplicas: sg.minReplicas } : {}) })),
  ];
  return parseGroupConfig({
    ...c.group,
    groupName: c.name,
    members: c.members.map((m) => ({ id: m.id, host: m.host, port: m.port })),
    layout: { subgroups },
  });
}
