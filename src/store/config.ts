import { z } from 'zod';

/**
 * Limits and timings of the store, one named value each. Part of the node configuration (src/node/config.ts),
 * validated at start-up; every field documented once, here.
 */
export const StoreLimitsSchema = z
  .object({
    /** Largest object value accepted (413 too_large above it; checked before the body is read). */
    valueBytesMax: z.number().int().min(1).max(1024 * 1024 * 1024).default(64 * 1024 * 1024),
    /** Most operations in one POST /v1/batch. */
    batchOpsMax: z.number().int().min(1).max(1_000_000).default(10_000),
    /** Largest /v1/batch body. */
    batchBytesMax: z.number().int().min(1024).max(2 * 1024 * 1024 * 1024).default(256 * 1024 * 1024),
    /** Default wait of a read at a time or version not yet stable (wait_ms). */
    readWaitMsDefault: z.number().int().min(0).default(2000),
    /** Largest wait_ms a client may ask for. */
    readWaitMsMax: z.number().int().min(0).default(60_000),
    /** Default and largest page of a history or key listing. */
    pageLimitDefault: z.number().int().min(1).default(1000),
    pageLimitMax: z.number().int().min(1).default(10_000),
    /** Most value bytes in one keys page with values=true (the page ends early with a cursor). */
    listValueBytesMax: z.number().int().min(1024).default(16 * 1024 * 1024),
    /** Operations accepted but not yet durable, per shard, before writes answer 503 overloaded. */
    shardPendingOpsMax: z.number().int().min(1).default(200_000),
    /** Operations handed to a shard's ordered stream per turn before it pushes back (its window). */
    shardWindowOps: z.number().int().min(1).default(50_000),
    /** How long a request id is remembered (a retry within this answers the first result). */
    requestIdRetentionMs: z.number().int().min(1000).default(10 * 60 * 1000),
    /** Versions trimmed inline per write by count-based retention (the sweep takes the rest). */
    trimPerWriteMax: z.number().int().min(1).default(64),
    /** Period of the age-based retention sweep, and keys it visits per shard per round. */
    retentionSweepMs: z.number().int().min(10).default(1000),
    retentionSweepKeysMax: z.number().int().min(1).default(10_000),
    /** Watch: most concurrent watchers, and events buffered per watcher before it is cut off. */
    watchersMax: z.number().int().min(0).default(1000),
    watchQueueEventsMax: z.number().int().min(1).default(10_000),
    /** Watch: how often buffered events are checked against the stability frontier. */
    watchTickMs: z.number().int().min(1).default(10),
    /**
     * Keys per shard whose newest durable index record is kept in memory, so a write (and a current read)
     * finds the key's current version without an LMDB range lookup; least recently written keys go first.
     * 0 turns the cache off.
     */
    latestCacheKeysMax: z.number().int().min(0).max(10_000_000).default(100_000),
    /** Largest request id accepted. */
    requestIdBytesMax: z.number().int().min(8).default(128),
  })
  .strict();

export type StoreLimits = z.infer<typeof StoreLimitsSchema>;

/** Layout of one node: shards per subgroup, per pool type (all one-member shards on a single node). */
export const LayoutSchema = z
  .object({
    persistent: z.array(z.object({ shards: z.number().int().min(1).max(256) }).strict()).min(1).default([{ shards: 2 }]),
    volatile: z.array(z.object({ shards: z.number().int().min(1).max(256) }).strict()).min(1).default([{ shards: 1 }]),
  })
  .strict();

export type Layout = z.infer<typeof LayoutSchema>;
