import { mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import { assert } from '../assert.js';
import { ShardLog } from './shard-log.js';

/**
 * One LMDB environment per node (DESIGN.md "Storage"). Holds the node's own metadata (the view counter)
 * and one ShardLog (a few named databases) per shard. Writes from the whole node share LMDB's write
 * batches: everything queued in one event-loop turn commits in one transaction, and `durable()` taken
 * right after queuing resolves once that transaction is synced to disk (group commit).
 */
export interface NodeStorageOptions {
  /** Directory of the environment; created if missing. */
  path: string;
  /** Upper bound on named databases (4 per shard plus a few). */
  databasesMax: number;
}

export class NodeStorage {
  readonly root: RootDatabase;
  readonly meta: Database<unknown, string>;
  readonly #shards = new Map<string, ShardLog>();
  #closed = false;

  private constructor(root: RootDatabase) {
    this.root = root;
    this.meta = root.openDB<unknown, string>({ name: 'node:meta', encoding: 'msgpack' });
  }

  static open(options: NodeStorageOptions): NodeStorage {
    assert(options.databasesMax >= 8, 'databasesMax must be ≥ 8');
    mkdirSync(options.path, { recursive: true });
    // noSubdir: false explicitly: lmdb-js treats a path with an extension as a file otherwise.
    const root = open({ path: options.path, noSubdir: false, maxDbs: options.databasesMax });
    return new NodeStorage(root);
  }

  /** The shard's log, opened on first use. `volatile` logs are emptied when opened (they do not survive restarts). */
  shard(name: string, volatile: boolean): ShardLog {
    let log = this.#shards.get(name);
    if (!log) {
      log = new ShardLog(this.root, name);
      if (volatile) log.clearSync();
      this.#shards.set(name, log);
    }
    return log;
  }

  /** Resolves when every write queued so far is committed and synced to disk. Call it in the turn that queued them. */
  durable(): Promise<unknown> {
    return Promise.resolve(this.root.flushed);
  }

  /** Resolves when every write queued so far is committed (visible to reads), not necessarily synced. */
  committed(): Promise<unknown> {
    return Promise.resolve(this.root.committed);
  }

  /** Starts a new view at every start: the previous one + 1, saved durably before it is used. */
  async nextView(): Promise<number> {
    const previous = this.meta.get('view');
    const view = typeof previous === 'number' ? previous + 1 : 0;
    await this.meta.put('view', view);
    await this.durable();
    return view;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.durable();
    await this.root.close();
  }
}
