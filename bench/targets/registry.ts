import type { PeerKind, PeersState } from '../../scripts/peers/state.js';
import type { KvTarget } from '../target.js';
import { EtcdTarget, type EtcdTargetOptions } from './etcd.js';
import { EtcdGrpcTarget } from './etcd-grpc.js';
import { RedisTarget } from './redis.js';
import { SquallTarget } from './squall.js';

/**
 * The targets the KV and scale benches can drive, by name (`--targets`). An entry says which peer system it
 * needs (the harness finds it running or starts it) and builds the adapter from the environment.
 */

export interface TargetEnv {
  /** A running Squall node (--url). */
  squallUrl: string;
  /** Copies of the data each system keeps (--cluster): Squall replicas per shard, etcd members, Redis primary + replicas. */
  clusterSize: number;
  /** The peer systems found running or started for this run (only those the selected targets need). */
  peers: PeersState;
}

export interface TargetEntry {
  /** The peer system this target talks to, if any (the target is then a "peer" of Squall). */
  needs?: PeerKind;
  /** Talks to the Squall cluster (--url, or the one the bench starts). */
  squall?: boolean;
  /** Not in the default --targets list (another client path to a system already in it). */
  optional?: boolean;
  create(env: TargetEnv): KvTarget;
}

function etcdOptions({ peers }: TargetEnv): EtcdTargetOptions {
  const etcd = peers.etcd;
  if (!etcd) throw new Error('etcd target: no etcd cluster running');
  return { endpoints: etcd.endpoints, members: etcd.members.length, requestBytesMax: etcd.requestBytesMax, txnOpsMax: etcd.txnOpsMax };
}

/**
 * Registration order is the default --targets order. Not in the default run: 'squall-delivered' (writes
 * answered once delivered to every replica, not yet synced) and 'etcd-json' (etcd's JSON gateway).
 */
export const targetRegistry: Record<string, TargetEntry> = {
  squall: { squall: true, create: (env) => new SquallTarget({ url: env.squallUrl }) },
  'squall-delivered': { squall: true, optional: true, create: (env) => new SquallTarget({ url: env.squallUrl, name: 'squall-delivered', durability: 'delivered' }) },
  etcd: { needs: 'etcd', create: (env) => new EtcdGrpcTarget(etcdOptions(env)) },
  'etcd-json': { needs: 'etcd', optional: true, create: (env) => new EtcdTarget(etcdOptions(env)) },
  redis: {
    needs: 'redis',
    create: ({ peers }) => {
      const redis = peers.redis;
      if (!redis) throw new Error('redis target: no redis primary running');
      return new RedisTarget({ port: redis.primary.port, replicas: redis.replicas.length });
    },
  },
};

/** The targets a run uses when --targets is not given. */
export function defaultTargets(): string[] {
  return Object.entries(targetRegistry).filter(([, e]) => !e.optional).map(([name]) => name);
}

/** Looks names up, in order; unknown names are a clear error listing what exists. */
export function resolveTargets(names: readonly string[]): [string, TargetEntry][] {
  return names.map((name) => {
    const entry = targetRegistry[name];
    if (!entry) throw new Error(`unknown target '${name}' (registered: ${Object.keys(targetRegistry).join(', ')}; add new ones in bench/targets/registry.ts)`);
    return [name, entry];
  });
}

/** A target of a peer system (etcd, Redis), as opposed to Squall itself. */
export function isPeerTarget(name: string): boolean {
  return targetRegistry[name]?.needs !== undefined;
}
