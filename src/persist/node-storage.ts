import { mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import { assert } from '../assert.js';
import { GroupCommit, StorageError, type StagedDb } from './group-commit.js';
import { ShardEndMarker, type ShardEnd } from './shard-end.js';
import { ShardLog } from './shard-log.js';

/**
 * One LMDB environment per node (DESIGN.md "Storage"). Holds the node's own metadata (the view counter)
 * and one ShardLog (a few named databases) per shard. Shard writes are staged and committed by one
 * GroupCommit for the whole node: one transaction at a time is written, synced while the next one is written.
 */
export interface NodeStorageOptions {
  /** Directory of the environment; created if missing. */
  path: string;
  /** Upper bound on named databases (4 per shard plus a few). */
  databasesMax: number;
  /** Most staged writes one transaction takes (bounds the time a commit holds the event loop). */
  commitWritesMax?: number;
}

export const COMMIT_WRITES_MAX_DEFAULT = 50_000;

export class NodeStorage {
  readonly root: RootDatabase;
  readonly meta: Database<unknown, string>;
  readonly commits: GroupCommit;
  readonly #shards = new Map<string, ShardLog>();
  #closed = false;

  private constructor(root: RootDatabase, commitWritesMax: number) {
    this.root = root;
    this.meta = root.openDB<unknown, string>({ name: 'node:meta', encoding: 'msgpack' });
    this.commits = new GroupCommit(root, commitWritesMax);
  }

  static open(options: NodeStorageOptions): NodeStorage {
    assert(options.databasesMax >= 8, 'databasesMax must be ≥ 8');
    mkdirSync(options.path, { recursive: true });
    // noSubdir: false explicitly: lmdb-js treats a path with an extension as a file otherwise.
    const root = open({ path: options.path, noSubdir: false, maxDbs: options.databasesMax });
    return new NodeStorage(root, options.commitWritesMax ?? COMMIT_WRITES_MAX_DEFAULT);
  }

  /** The shard's log, opened on first use. `volatile` logs are emptied when opened (they do not survive restarts). */
  shard(name: string, volatile: boolean): ShardLog {
    let log = this.#shards.get(name);
    if (!log) {
      log = new ShardLog(this.root, name, this.commits, this.meta);
      if (volatile) log.clearSync();
      this.#shards.set(name, log);
    }
    return log;
  }

  /** Called once if a write to the environment fails (disk full, I/O error); every later write fails too. */
  onFailure(listener: (e: StorageError) => void): void {
    this.commits.onFailure(listener);
  }

  /** Resolves when every write staged or made so far is committed and synced to disk. */
  durable(): Promise<unknown> {
    return this.commits.durable();
  }

  /** Resolves when every write staged so far is committed (visible to LMDB reads), not necessarily synced. */
  committed(): Promise<unknown> {
    return this.commits.committed();
  }

  /** Where this node's copy of a shard ends (null: never held here). Read without opening the shard's databases. */
  shardEnd(name: string): ShardEnd | null {
    return (this.meta.get(`end:${name}`) as ShardEnd | undefined) ?? null;
  }

  /** An end marker for a shard that has no ShardLog (the pool metadata shard). */
  endMarker(name: string): ShardEndMarker {
    return new ShardEndMarker(name, this.meta, this.commits);
  }

  /** Stages a write of the node's metadata (ordered with every other staged write; durable with them). */
  putMeta(key: string, value: unknown): void {
    this.commits.put(this.meta as unknown as StagedDb, key, value);
  }

  removeMeta(key: string): void {
    this.commits.remove(this.meta as unknown as StagedDb, key);
  }

  /** Starts a new view at every start: the previous one + 1, saved durably before it is used. */
  async nextView(): Promise<number> {
    const previous = this.meta.get('view');
    const view = typeof previous === 'number' ? previous + 1 : 0;
    this.putMeta('view', view);
    await this.durable();
    return view;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // after a failed write nothing more reaches the disk (the failure was reported when it happened): just close
    await this.durable().catch((e: unknown) => {
      if (!(e instanceof StorageError)) throw e;
    });
    await this.root.close();
  }
}
