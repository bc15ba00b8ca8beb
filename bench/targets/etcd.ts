import { Pool } from 'undici';
import type { KeyValue, KvTarget, OpenOptions, TargetLimits } from '../target.js';

/**
 * etcd through its v3 JSON gateway (grpc-gateway, served on the client port), with undici Pool.request:
 * keys and values base64 in JSON. Requests go round-robin over the members' endpoints, as etcd's own
 * client balances. A put is acknowledged after the Raft entry is committed, i.e. fsynced to the WAL on a
 * majority. Current reads are linearizable (etcd's default). Reads at a past revision are serializable:
 * a revision returned by an acknowledged put is immutable, so any member that has applied it answers
 * correctly; this is the cheapest correct way to ask etcd, which favours etcd in the comparison.
 */

export interface EtcdTargetOptions {
  endpoints: readonly string[];
  /** Size of the cluster, for the durability statement. */
  members: number;
  /** Largest request etcd was started with (--max-request-bytes); batches beyond it are not sent. */
  requestBytesMax: number;
  /** etcd --max-txn-ops. */
  txnOpsMax: number;
  requestTimeoutMs?: number;
}

interface ResponseHeader {
  revision?: string;
}
interface RangeResponse {
  header?: ResponseHeader;
  kvs?: { value?: string }[];
}

const b64 = (bytes: Uint8Array | string) => Buffer.from(bytes).toString('base64');

export class EtcdTarget implements KvTarget<number> {
  readonly name = 'etcd-json';
  readonly durability: string;
  readonly readConsistency = etcdReadConsistency;
  readonly limits: TargetLimits;
  private pools: Pool[] = [];
  private next = 0;
  private readonly requestTimeoutMs: number;

  constructor(private readonly options: EtcdTargetOptions) {
    if (options.endpoints.length === 0) throw new Error('etcd target needs at least one endpoint');
    this.durability = etcdDurability(options.members);
    // base64 in JSON: the gateway turns the body into one gRPC request of about 3/4 its size
    this.limits = { requestBytesMax: options.requestBytesMax, batchEntriesMax: options.txnOpsMax };
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  }

  async open({ concurrency }: OpenOptions): Promise<void> {
    const perEndpoint = Math.max(1, Math.ceil(concurrency / this.options.endpoints.length));
    this.pools = this.options.endpoints.map((url) => new Pool(url, { connections: perEndpoint, pipelining: 1 }));
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    const res = await this.call<{ header?: ResponseHeader }>('/v3/kv/put', { key: b64(key), value: b64(value) });
    return revisionOf(res.header);
  }

  async putMany(entries: readonly KeyValue[]): Promise<number> {
    const success = entries.map((e) => ({ request_put: { key: b64(e.key), value: b64(e.value) } }));
    const res = await this.call<{ header?: ResponseHeader; succeeded?: boolean }>('/v3/kv/txn', { success });
    if (res.succeeded !== true) throw new Error('etcd txn did not succeed');
    return revisionOf(res.header);
  }

  async get(key: string): Promise<Uint8Array | null> {
    return valueOf(await this.call<RangeResponse>('/v3/kv/range', { key: b64(key) }));
  }

  async getPast(key: string, revision: number): Promise<Uint8Array | null> {
    return valueOf(await this.call<RangeResponse>('/v3/kv/range', { key: b64(key), revision: String(revision), serializable: true }));
  }

  async close(): Promise<void> {
    await Promise.all(this.pools.map((p) => p.close()));
    this.pools = [];
  }

  private async call<T>(path: string, body: unknown): Promise<T> {
    const pool = this.pools[this.next++ % this.pools.length];
    if (!pool) throw new Error('etcd target is not open');
    const res = await pool.request({
      path,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      headersTimeout: this.requestTimeoutMs,
      bodyTimeout: this.requestTimeoutMs,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`etcd ${path}: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
    return JSON.parse(text) as T;
  }
}

/** An acknowledged etcd write is committed in Raft: in the WAL, fsynced, on a majority. */
export function etcdDurability(members: number): string {
  return `fsync (WAL) on a majority (${Math.floor(members / 2) + 1}/${members})`;
}

export const etcdReadConsistency = { get: 'linearizable read', getPast: 'serializable read at a revision' };

export function revisionOf(header: { revision?: string | null } | null | undefined): number {
  const revision = Number(header?.revision);
  if (!Number.isSafeInteger(revision) || revision <= 0) throw new Error(`etcd answered without a revision: ${JSON.stringify(header)}`);
  return revision;
}

function valueOf(res: RangeResponse): Uint8Array | null {
  const kv = res.kvs?.[0];
  if (!kv) return null;
  // an empty value is omitted from the JSON
  return Buffer.from(kv.value ?? '', 'base64');
}
