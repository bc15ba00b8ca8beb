import { z } from 'zod';
import { SquallError } from '../api/errors.js';

/**
 * The group's configuration: one typed object with defaults, validated once at start-up (parseGroupConfig).
 * Every bound of the transport is here, named with its unit. All members of a group must use the same
 * values for the fields marked "group-wide" (the layout is computed independently on every member).
 */

const member = z.object({
  id: z.number().int().min(0).max(65_535),
  host: z.string().min(1),
  port: z.number().int().min(0).max(65_535),
});

const subgroup = z.object({
  /** Store type this subgroup serves, e.g. "persistent" or "volatile" (names shards "type/i/j"). */
  type: z.string().regex(/^[a-z][a-z0-9_-]*$/, 'type must be a lower-case word'),
  /** Number of shards. */
  shards: z.number().int().min(1).max(1024),
  /** Replicas wanted per shard (the layout fills up to this many). */
  replicas: z.number().int().min(1).max(64),
  /** A shard with fewer members than this is not provisioned (does not order messages). Default: 1. */
  minReplicas: z.number().int().min(1).max(64).optional(),
  /** Member ids pinned to each shard (reserved members), one list per shard; may overlap across subgroups. */
  reserved: z.array(z.array(z.number().int().min(0))).optional(),
  /**
   * 'disjoint' (default, Derecho's): a member is in at most one shard of all disjoint subgroups.
   * 'overlap': each shard takes up to `replicas` members from the whole view, whatever other shards hold
   * (a store with more shards than nodes / replicas, or a subgroup every member must be in).
   */
  placement: z.enum(['disjoint', 'overlap']).optional(),
});

export const groupConfigSchema = z
  .object({
    /** Group-wide. Name checked in every link handshake, so two groups on one host never mix. */
    groupName: z.string().min(1).default('squall'),
    /** Group-wide. The initial members in rank order: they form view 0, and joiners contact them. */
    members: z.array(member).min(1).max(1024),
    /** Group-wide. Subgroups and shards (see layout.ts). */
    layout: z.object({ subgroups: z.array(subgroup).min(1).max(64) }),
    /** How often a member publishes its heartbeat (and stability frontier). */
    heartbeatPeriodMs: z.number().int().min(1).max(60_000).default(100),
    /** A member is suspected after this many of its own heartbeat periods without hearing from it. */
    suspectAfterMissedHeartbeats: z.number().int().min(2).max(10_000).default(20),
    /** Group-wide. A member that sees itself in a minority stops; false only for 2-member test groups. */
    majorityRule: z.boolean().default(true),
    /**
     * Most own payloads a member has queued or in flight per shard (not yet delivered everywhere).
     * Deeper windows add latency without adding throughput (measured: bench/multicast.ts).
     */
    windowPayloads: z.number().int().min(1).max(1_000_000).default(2048),
    /** Most own payload bytes queued or in flight per shard (at least one payload is always allowed). */
    windowBytes: z.number().int().min(1024).max(2 ** 31).default(16 * 1024 * 1024),
    /** Largest payload accepted by send(). */
    maxPayloadBytes: z.number().int().min(1).max(2 ** 30).default(64 * 1024 * 1024),
    /**
     * Payload bytes per batch frame (a turn's queue larger than this goes out as several frames, so a
     * receiver can deliver the first while the next is still on the wire).
     */
    batchBytesMax: z.number().int().min(1024).max(2 ** 30).default(1024 * 1024),
    /** Payloads up to this size are copied into the batch frame; larger ones are sent by reference. */
    inlinePayloadBytesMax: z.number().int().min(0).max(1024 * 1024).default(4096),
    /** Null messages an idle sender commits ahead of a busy one (one batch ahead, at most this many). */
    nullLookaheadMax: z.number().int().min(0).max(1_000_000).default(65_536),
    /** A view whose sequence numbers pass this asks for a fresh view (seq is 32 bits per view). */
    seqRolloverAt: z.number().int().min(1024).max(2 ** 32 - 2 ** 24).default(2 ** 31),
    /** How often a joiner or restarting member repeats its request. */
    joinRetryMs: z.number().int().min(1).max(600_000).default(500),
    /** The leader waits this long after the first pending join so a herd of joins forms one view. */
    joinBatchMs: z.number().int().min(0).max(600_000).default(50),
    /** Most joiners admitted in one view change. */
    joinsPerViewMax: z.number().int().min(1).max(1024).default(32),
    /** A member receiving a state transfer asks the next donor when no chunk of it has arrived for this long. */
    stateTransferTimeoutMs: z.number().int().min(1).max(3_600_000).default(60_000),
    /**
     * Shard history per state-transfer chunk (bytes of records, at least one record per chunk): a donor
     * exports one chunk at a time; the receiver asks for the next when one arrives and installs them durably
     * in order, so the donor prepares chunk n+1 while chunk n installs, and neither side holds more than two
     * chunks of a shard in memory or blocks its event loop (and its heartbeats) for long.
     */
    stateChunkBytes: z.number().int().min(1024).max(2 ** 30).default(8 * 1024 * 1024),
    /**
     * Deliveries a joiner buffers (payload bytes) while its state transfer is in progress. At the limit it
     * stops delivering, and with it the shard (the senders' windows wait for every member) until the
     * state is installed; the joiner then buffers at most one window more.
     */
    joinerQueueBytesMax: z.number().int().min(1024).max(2 ** 32).default(512 * 1024 * 1024),
    /** Frames buffered for a view this member has not installed yet (bytes). */
    futureFrameBytesMax: z.number().int().min(1024).max(2 ** 32).default(512 * 1024 * 1024),
    /** Member that coordinates a total restart (default: the lowest id of `members`). */
    restartLeaderId: z.number().int().min(0).optional(),
    /** After a restart quorum is present, wait this long for the other members of the last view. */
    restartGraceMs: z.number().int().min(0).max(600_000).default(2000),
    /** Default timeout of a P2P request. */
    p2pTimeoutMs: z.number().int().min(1).max(3_600_000).default(5000),
    /** Largest P2P request or reply payload. */
    p2pPayloadBytesMax: z.number().int().min(1).max(2 ** 30).default(64 * 1024 * 1024),
    /** Most P2P requests this member has outstanding. */
    p2pOutstandingMax: z.number().int().min(1).max(1_000_000).default(65_536),
  })
  .strict();

export type GroupConfigInput = z.input<typeof groupConfigSchema>;
export type GroupConfig = z.output<typeof groupConfigSchema> & { restartLeaderId: number };
export type SubgroupConfig = z.output<typeof subgroup>;

/** Validate and complete a configuration; throws SquallError(bad_parameter) naming the offending field. */
export function parseGroupConfig(input: unknown): GroupConfig {
  const parsed = groupConfigSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new SquallError('bad_parameter', `group config: ${issue.path.join('.') || '(root)'}: ${issue.message}`, {
      path: issue.path.map(String),
    });
  }
  const c = parsed.data;
  const fail = (path: string, message: string): never => {
    throw new SquallError('bad_parameter', `group config: ${path}: ${message}`, { path: path.split('.') });
  };
  const ids = new Set<number>();
  c.members.forEach((m, i) => {
    if (ids.has(m.id)) fail(`members.${i}.id`, `duplicate member id ${m.id}`);
    ids.add(m.id);
  });
  c.layout.subgroups.forEach((s, i) => {
    const min = s.minReplicas ?? 1;
    if (min > s.replicas) fail(`layout.subgroups.${i}.minReplicas`, `${min} exceeds replicas ${s.replicas}`);
    if (s.reserved) {
      if (s.reserved.length > s.shards) fail(`layout.subgroups.${i}.reserved`, `${s.reserved.length} lists for ${s.shards} shards`);
      const seen = new Set<number>();
      s.reserved.forEach((list, j) =>
        list.forEach((id) => {
          if (seen.has(id)) fail(`layout.subgroups.${i}.reserved.${j}`, `member ${id} reserved in two shards of one subgroup`);
          seen.add(id);
        }),
      );
    }
  });

  if (c.inlinePayloadBytesMax > c.batchBytesMax) fail('inlinePayloadBytesMax', `exceeds batchBytesMax ${c.batchBytesMax}`);
  const restartLeaderId = c.restartLeaderId ?? Math.min(...c.members.map((m) => m.id));
  return { ...c, restartLeaderId };
}
