/**
 * The fabric data plane's configuration: one typed object with defaults, validated once at start-up.
 * In the cluster config it is the `transport` entry `{"kind":"fabric","provider":"shm"|"tcp"|"net"|"verbs", ...}`.
 */
import { z } from 'zod';
import { FABRIC_PROVIDERS, type NativeFabricOptions } from './addon.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export const fabricConfigSchema = z
  .object({
    /** shm: processes on one host (one-sided copies, no network); tcp, net: libfabric over sockets; verbs: RDMA. */
    provider: z.enum(FABRIC_PROVIDERS as [string, ...string[]]).transform((p) => p as NativeFabricOptions['provider']),
    /** Address the endpoint binds (tcp, net, verbs). For verbs, an address of the RDMA device (IPoIB). */
    host: z.string().min(1).default('127.0.0.1'),
    /** shm endpoint files are /dev/shm/<shmPrefix>-<pid>-<start>-<n>; stale ones of dead processes are removed. */
    shmPrefix: z.string().regex(/^[A-Za-z0-9_]+$/, 'letters, digits and _ only').default('squall'),
    /** A write not completed (or not even posted) after this long marks its peer dead. */
    writeTimeoutMs: z.number().int().min(10).max(600_000).default(5000),
    /** The progress thread spins this long after the last activity before it starts to sleep. */
    pollSpinUs: z.number().int().min(0).max(1_000_000).default(50),
    /** Longest idle sleep of the progress thread: bounds the wake-up latency of an idle member. */
    pollSleepMaxUs: z.number().int().min(1).max(1_000_000).default(1000),
    /** How often co-located peers' processes are checked for exit (0 = never). */
    livenessCheckMs: z.number().int().min(0).max(60_000).default(100),
    /**
     * shm: a provider call stuck this long makes a watchdog look for provider locks left held by dead
     * co-located processes (libfabric's shm locks do not survive their holder) and release them (0 = off).
     */
    shmLockRecoveryMs: z.number().int().min(0).max(60_000).default(250),
    /** Writes in flight in the provider at once (per endpoint); more wait in per-peer queues. */
    maxOutstandingWrites: z.number().int().min(1).max(1 << 20).default(1024),
    /** Writes waiting to one peer; past this the peer is declared dead (it is not draining). */
    maxQueuedWrites: z.number().int().min(1).max(1 << 24).default(65536),
    /** Large writes are split into blocks of at most this size. */
    blockSizeBytes: z.number().int().min(4 * KiB).max(1 * GiB).default(1 * MiB),
    /** Largest region (table, ring) one may register. */
    maxRegionBytes: z.number().int().min(4 * KiB).max(64 * GiB).default(1 * GiB),
  })
  .strict();

/** The fabric driver's section of the cluster config: `{"kind":"fabric","provider":...}` plus these. */
export const fabricTransportSchema = fabricConfigSchema
  .extend({
    kind: z.literal('fabric'),
    /** Record space of each link's ring, per direction, registered at both ends (memory: 2 per peer). */
    ringCapacityBytes: z.number().int().min(64 * KiB).max(4 * GiB).multipleOf(16).default(8 * MiB),
    /** Frames larger than this are split into fragments in the ring (and reassembled before delivery). */
    fragmentBytesMax: z.number().int().min(4 * KiB).max(1 * GiB).default(1 * MiB),
    /** Frame bytes kept for one peer while its link is not up or its ring is full; past it the link drops. */
    pendingBytesMax: z.number().int().min(1 * MiB).max(64 * GiB).default(512 * MiB),
    /** An up fabric link outlives a broken control (TCP) link this long, waiting for it to come back. */
    controlGraceMs: z.number().int().min(0).max(600_000).default(1000),
    /** A fabric hello not answered is sent again after this long (hellos ride the control link). */
    helloRetryMs: z.number().int().min(10).max(60_000).default(250),
  })
  .strict()
  .refine((c) => c.fragmentBytesMax + 32 <= c.ringCapacityBytes, { message: 'fragmentBytesMax must be smaller than ringCapacityBytes', path: ['fragmentBytesMax'] });

export type FabricConfig = z.output<typeof fabricConfigSchema>;
export type FabricTransportConfig = z.output<typeof fabricTransportSchema>;
export type FabricConfigInput = z.input<typeof fabricConfigSchema>;

/** Validates and fills defaults; throws an Error listing every bad field. */
export function fabricConfig(input: FabricConfigInput): FabricConfig {
  const r = fabricConfigSchema.safeParse(input);
  if (!r.success) throw new Error(`invalid fabric transport config:\n${z.prettifyError(r.error)}`);
  return r.data;
}
