import { noop } from 'cockatiel';
import { Etcd3 } from 'etcd3';
import type { KeyValue, KvTarget, OpenOptions, TargetLimits } from '../target.js';
import { etcdDurability, etcdReadConsistency, revisionOf, type EtcdTargetOptions } from './etcd.js';

/**
 * etcd through its native gRPC API (the `etcd3` client on @grpc/grpc-js; its raw KV service: Put, Range,
 * Txn), which is how etcd's own clients talk to it: HTTP/2 channels to every member, calls spread over
 * them. Same guarantees as the JSON gateway target (see etcd.ts). The client's retry and circuit-breaker
 * policies are off, so a failed call counts as a failed operation instead of a slow one.
 */
export class EtcdGrpcTarget implements KvTarget<number> {
  readonly name = 'etcd';
  readonly durability: string;
  readonly readConsistency = etcdReadConsistency;
  readonly limits: TargetLimits;
  private client: Etcd3 | null = null;

  constructor(private readonly options: EtcdTargetOptions) {
    if (options.endpoints.length === 0) throw new Error('etcd target needs at least one endpoint');
    this.durability = etcdDurability(options.members);
    this.limits = { requestBytesMax: options.requestBytesMax, batchEntriesMax: options.txnOpsMax };
  }

  async open(_options: OpenOptions): Promise<void> {
    // gRPC multiplexes calls on one HTTP/2 connection per member, so concurrency needs no pool sizing
    this.client = new Etcd3({
      hosts: [...this.options.endpoints],
      faultHandling: { host: () => noop, global: noop },
      grpcOptions: { 'grpc.max_send_message_length': this.options.requestBytesMax, 'grpc.max_receive_message_length': this.options.requestBytesMax },
    });
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    return revisionOf((await this.kv().put({ key: Buffer.from(key), value: asBuffer(value) })).header);
  }

  async putMany(entries: readonly KeyValue[]): Promise<number> {
    const res = await this.kv().txn({ success: entries.map((e) => ({ request_put: { key: Buffer.from(e.key), value: asBuffer(e.value) } })) });
    if (!res.succeeded) throw new Error('etcd txn did not succeed');
    return revisionOf(res.header);
  }

  async get(key: string): Promise<Uint8Array | null> {
    return (await this.kv().range({ key: Buffer.from(key) })).kvs[0]?.value ?? null;
  }

  async getPast(key: string, revision: number): Promise<Uint8Array | null> {
    return (await this.kv().range({ key: Buffer.from(key), revision, serializable: true })).kvs[0]?.value ?? null;
  }

  async close(): Promise<void> {
    this.client?.close();
    this.client = null;
  }

  private kv() {
    if (!this.client) throw new Error('etcd target is not open');
    return this.client.kv;
  }
}

const asBuffer = (v: Uint8Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
