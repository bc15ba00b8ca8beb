/**
 * The wire types of Squall's HTTP API v1 (API.md), shared by the server (http/) and the client
 * (src/client/) so neither restates them. Versions are JSON numbers (safe integers, -1 never appears on
 * the wire: "none" is null); timestamps are integer microseconds since the Unix epoch.
 */

export type PoolType = 'persistent' | 'volatile';
export type Durability = 'delivered' | 'persisted';

export interface RetainSpec {
  /** Keep at most this many newest versions per key (the newest is never trimmed). */
  versions?: number;
  /** Keep history for this many seconds (the value current at now-seconds stays readable). */
  seconds?: number;
}

/** Body of PUT /v1/pools/{path}. */
export interface PoolSpec {
  type: PoolType;
  subgroup?: number;
  affinity?: string;
  retain?: RetainSpec;
}

/** A pool as the server reports it. */
export interface PoolInfo {
  path: string;
  type: PoolType;
  subgroup: number;
  shards: number;
  affinity: string | null;
  retain: RetainSpec | null;
  deleted: boolean;
  version: number;
  timestamp_us: number;
}

/** 200 answer of PUT/DELETE /v1/objects/{key}. */
export interface WriteResult {
  key: string;
  version: number;
  timestamp_us: number;
  previous_version: number | null;
  previous_version_by_key: number | null;
  shard: number;
  durability: Durability;
}

export interface HistoryEntry {
  version: number;
  timestamp_us: number;
  size: number;
  deleted: boolean;
}

export interface HistoryPage {
  key: string;
  versions: HistoryEntry[];
  next: string | null;
}

export interface KeyEntry {
  key: string;
  version: number;
  timestamp_us: number;
  size: number;
  /** Present only with values=true: the value, base64. */
  value?: string;
}

export interface KeysPage {
  keys: KeyEntry[];
  next: string | null;
}

export type BatchOp =
  | { op: 'put'; key: string; value: Uint8Array | string; if_match?: number; if_none_match?: '*'; content_type?: string }
  | { op: 'get'; key: string; version?: number; at?: number | string; stable?: boolean }
  | { op: 'delete'; key: string; if_match?: number };

export interface BatchRequest {
  ops: BatchOp[];
}

/** One result of a batch: the single call's fields plus a status; a get carries its value. */
export interface BatchResult {
  status: number;
  error?: ErrorDetail;
  key?: string;
  version?: number;
  timestamp_us?: number;
  previous_version?: number | null;
  previous_version_by_key?: number | null;
  shard?: number;
  durability?: Durability;
  /** get results: bytes (msgpack) or base64 (JSON). */
  value?: Uint8Array | string;
  content_type?: string;
  size?: number;
}

export interface BatchResponse {
  results: BatchResult[];
}

export interface WatchEvent {
  key: string;
  version: number;
  timestamp_us: number;
  op: 'put' | 'delete';
  size: number;
  shard: number;
}

export interface ShardInfo {
  shard: number;
  members: number[];
  delivered_version: number | null;
  persisted_frontier: number | null;
  stability_frontier_us: number;
}

export interface SubgroupInfo {
  type: PoolType | 'metadata';
  subgroup: number;
  shards: ShardInfo[];
}

export interface MemberInfo {
  id: number;
  address: string;
  http: string;
  status: 'up' | 'suspected' | 'down';
}

export interface ClusterInfo {
  view: number;
  members: MemberInfo[];
  subgroups: SubgroupInfo[];
  leader: number;
}

export interface ErrorDetail {
  code: ErrorCode;
  message: string;
  [detail: string]: unknown;
}

export interface ErrorBody {
  error: ErrorDetail;
}

/** Every error code of API.md, with its HTTP status. `overloaded` is Squall's addition (503, Retry-After). */
export const ERROR_STATUS = {
  bad_key: 400,
  bad_parameter: 400,
  bad_body: 400,
  pool_not_found: 404,
  not_found: 404,
  deleted: 404,
  route_not_found: 404,
  method_not_allowed: 405,
  pool_conflict: 409,
  trimmed: 410,
  version_mismatch: 412,
  too_large: 413,
  not_yet_stable: 425,
  internal: 500,
  no_quorum: 503,
  view_change: 503,
  overloaded: 503,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** Response headers carried by object reads. */
export const HEADER = {
  version: 'squall-version',
  timestampUs: 'squall-timestamp-us',
  previousVersionByKey: 'squall-previous-version-by-key',
  durability: 'squall-durability',
  requestId: 'squall-request-id',
  deleted: 'squall-deleted',
  /**
   * The error code on every error response, next to the JSON body. HEAD answers have no body, so this header
   * is how a client learns e.g. `deleted` vs `not_found` vs `pool_not_found` from a HEAD.
   */
  errorCode: 'squall-error-code',
} as const;
