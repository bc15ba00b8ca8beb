import { Redis } from 'ioredis';
import type { KeyValue, KvTarget, OpenOptions } from '../target.js';

/**
 * Redis through ioredis: a primary with AOF `appendfsync always` and asynchronous replicas. Every write
 * is sent in one pipeline with `WAIT <replicas> <timeout>`, so an acknowledged write is fsynced in the
 * primary's AOF and received (in memory, not fsynced) by every replica; a WAIT that returns fewer
 * replicas counts as a failed write. WAIT blocks its connection, so each in-flight operation gets its own
 * connection from a pool sized to the concurrency. Reads go to the primary (replicas lag). Redis keeps
 * no history: no getPast.
 */

export interface RedisTargetOptions {
  host?: string;
  port: number;
  /** Replicas each write must reach (WAIT n). */
  replicas: number;
  waitTimeoutMs?: number;
}

/** Connections handed to one operation at a time. */
class ConnectionPool {
  private readonly free: Redis[];
  private readonly waiting: ((c: Redis) => void)[] = [];
  constructor(readonly all: Redis[]) {
    this.free = [...all];
  }
  async use<T>(fn: (c: Redis) => Promise<T>): Promise<T> {
    const conn = this.free.pop() ?? (await new Promise<Redis>((resolve) => this.waiting.push(resolve)));
    try {
      return await fn(conn);
    } finally {
      const waiter = this.waiting.shift();
      if (waiter) waiter(conn);
      else this.free.push(conn);
    }
  }
}

export class RedisTarget implements KvTarget<undefined> {
  readonly name = 'redis';
  readonly durability: string;
  readonly readConsistency = { get: 'read from the primary' };
  private pool: ConnectionPool | null = null;
  private readonly waitTimeoutMs: number;

  constructor(private readonly options: RedisTargetOptions) {
    this.waitTimeoutMs = options.waitTimeoutMs ?? 5_000;
    this.durability = `AOF fsync always on the primary + WAIT ${options.replicas} (received in memory by ${options.replicas}/${options.replicas} replicas)`;
  }

  async open({ concurrency }: OpenOptions): Promise<void> {
    const conns = Array.from({ length: Math.max(1, concurrency) }, () => new Redis({ host: this.options.host ?? '127.0.0.1', port: this.options.port, lazyConnect: true, maxRetriesPerRequest: 1 }));
    await Promise.all(conns.map((c) => c.connect()));
    this.pool = new ConnectionPool(conns);
  }

  async put(key: string, value: Uint8Array): Promise<undefined> {
    await this.pool!.use(async (c) => this.checkReplies(await c.pipeline().set(key, Buffer.from(value.buffer, value.byteOffset, value.byteLength)).wait(this.options.replicas, this.waitTimeoutMs).exec()));
    return undefined;
  }

  async putMany(entries: readonly KeyValue[]): Promise<undefined> {
    const commands: (string | Buffer)[][] = [['multi']];
    for (const e of entries) commands.push(['set', e.key, Buffer.from(e.value.buffer, e.value.byteOffset, e.value.byteLength)]);
    commands.push(['exec'], ['wait', String(this.options.replicas), String(this.waitTimeoutMs)]);
    await this.pool!.use(async (c) => this.checkReplies(await c.pipeline(commands).exec()));
    return undefined;
  }

  async get(key: string): Promise<Uint8Array | null> {
    return this.pool!.use((c) => c.getBuffer(key));
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    if (pool) await Promise.all(pool.all.map((c) => c.quit().catch(() => c.disconnect())));
  }

  /** Every reply is free of errors and the last one (WAIT) counts every replica. */
  private checkReplies(replies: [Error | null, unknown][] | null): void {
    if (!replies) throw new Error('redis pipeline was not executed');
    for (const [err] of replies) if (err) throw err;
    const acked = replies.at(-1)?.[1];
    if (acked !== this.options.replicas) throw new Error(`WAIT ${this.options.replicas} got ${String(acked)} replicas within ${this.waitTimeoutMs} ms`);
  }
}
