import { constants as osConstants } from 'node:os';
import type { Database, Key, RootDatabase } from 'lmdb';
import { assert } from '../assert.js';

/**
 * Group commit aligned with the disk sync. Writes are staged in memory in order; one LMDB transaction
 * takes everything staged (up to `commitWritesMax`). The next transaction starts as soon as the previous
 * one is committed (written, visible), while the disk still syncs it (lmdb-js's overlapping sync): so
 * while one transaction syncs, the next is written and new writes gather into the one after. Throughput
 * grows with the sync time instead of being capped by it (one sync per event-loop turn would cap it), and
 * a write waits for at most one commit before its own starts, not for a commit and a sync.
 *
 * The layers above read staged-but-uncommitted data from their own overlays; LMDB readers see a write
 * once its transaction commits.
 *
 * Invariants: writes reach LMDB in staging order; at most one transaction is being written at a time;
 * a waiter for position p resolves only after every transaction holding a write up to p is synced
 * (durable) or committed (visible), transactions are released in order; positions grow.
 */
const REMOVE = Symbol('remove');
const ignore = (): void => undefined;
/** Any of the environment's databases, as the stage sees it. */
export type StagedDb = Database<unknown, Key>;
type StagedWrite = [db: StagedDb, key: Key, value: unknown];

interface Waiter {
  position: number;
  resolve(): void;
  reject(e: Error): void;
}

interface Txn {
  /** Position of the last staged write this transaction holds. */
  upTo: number;
  flushed: boolean;
}

export class GroupCommit {
  readonly #root: RootDatabase;
  readonly #commitWritesMax: number;
  #staged: StagedWrite[] = [];
  /** Writes staged since the start; the position of the last staged write. */
  #position = 0;
  /** Highest position committed (visible) and synced (durable). */
  #committedPosition = 0;
  #durablePosition = 0;
  #durableWaiters: Waiter[] = [];
  #committedWaiters: Waiter[] = [];
  /** Transactions committed or being written and not yet synced, oldest first. */
  readonly #unsynced: Txn[] = [];
  /** A transaction is being written (not yet committed). */
  #writing = false;
  #scheduled = false;
  #failed: Error | null = null;
  readonly #failureListeners: ((e: StorageError) => void)[] = [];

  constructor(root: RootDatabase, commitWritesMax: number) {
    assert(commitWritesMax >= 1, 'commitWritesMax must be ≥ 1');
    this.#root = root;
    this.#commitWritesMax = commitWritesMax;
  }

  /**
   * Called once when a transaction fails (disk full, I/O error): from then on every staged write and
   * every wait fails with the same StorageError. The node decides what that means (a cluster member stops).
   */
  onFailure(listener: (e: StorageError) => void): void {
    if (this.#failed instanceof StorageError) listener(this.#failed);
    else this.#failureListeners.push(listener);
  }

  get stagedWrites(): number {
    return this.#staged.length;
  }

  put(db: StagedDb, key: Key, value: unknown): void {
    this.#staged.push([db, key, value]);
    this.#position++;
    this.#schedule();
  }

  remove(db: StagedDb, key: Key): void {
    this.#staged.push([db, key, REMOVE]);
    this.#position++;
    this.#schedule();
  }

  /** Resolves once every write staged so far (and every direct LMDB write before now) is synced. */
  durable(): Promise<void> {
    return this.#wait(this.#durableWaiters, this.#durablePosition);
  }

  /** Resolves once every write staged so far is committed (visible to LMDB readers). */
  committed(): Promise<void> {
    return this.#wait(this.#committedWaiters, this.#committedPosition);
  }

  #wait(waiters: Waiter[], reached: number): Promise<void> {
    if (this.#failed) return Promise.reject(this.#failed);
    const position = this.#position;
    if (position <= reached && this.#unsynced.length === 0) {
      // nothing of ours pending; still cover direct writes made outside the stage
      return Promise.resolve(this.#root.flushed).then(() => undefined);
    }
    return new Promise<void>((resolve, reject) => {
      waiters.push({ position, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#writing || this.#failed) return;
    this.#scheduled = true;
    // after the current turn, so everything staged in it shares the transaction
    setImmediate(() => {
      this.#scheduled = false;
      this.#commit();
    });
  }

  #commit(): void {
    if (this.#writing || this.#failed) return;
    const take = Math.min(this.#staged.length, this.#commitWritesMax);
    if (take === 0) return; // every waiter's writes are in a transaction under way
    this.#writing = true;
    const batch = take === this.#staged.length ? this.#staged : this.#staged.slice(0, take);
    this.#staged = take === this.#staged.length ? [] : this.#staged.slice(take);
    const txn: Txn = { upTo: this.#position - this.#staged.length, flushed: false };
    this.#unsynced.push(txn);
    // everything below is one LMDB transaction: lmdb-js batches the writes of one turn
    let handled: unknown = null;
    for (const [db, key, value] of batch) {
      const written: unknown = value === REMOVE ? db.remove(key) : db.put(key, value);
      // the writes of one lmdb-js batch share a promise that rejects, too, when the commit fails: the
      // failure is taken from `committed` below, so mark it handled (once per distinct promise)
      if (written !== handled && written instanceof Promise) {
        handled = written;
        written.catch(ignore);
      }
    }
    // Watched from the next immediate: lmdb-js creates the batch's commit promise in a task it queued at the
    // first write above (immediates run in order), and `committed` follows that promise only once it exists;
    // watched now, a failed commit would leave that promise rejected with no handler (the process would end).
    // The commit itself completes in a later turn, so nothing is missed.
    setImmediate(() => this.#watch(txn));
  }

  #watch(txn: Txn): void {
    Promise.resolve(this.#root.committed).then(
      () => {
        this.#writing = false;
        this.#committedPosition = Math.max(this.#committedPosition, txn.upTo);
        this.#release(this.#committedWaiters, this.#committedPosition);
        if (this.#staged.length > 0) this.#commit();
      },
      (e: unknown) => this.#fail(e as Error),
    );
    Promise.resolve(this.#root.flushed).then(
      () => {
        txn.flushed = true;
        this.#drainSynced();
      },
      (e: unknown) => this.#fail(e as Error),
    );
  }

  /** Releases, in order, the transactions synced so far. */
  #drainSynced(): void {
    let moved = false;
    while (this.#unsynced.length > 0 && this.#unsynced[0]!.flushed) {
      const txn = this.#unsynced.shift()!;
      this.#committedPosition = Math.max(this.#committedPosition, txn.upTo);
      this.#durablePosition = Math.max(this.#durablePosition, txn.upTo);
      moved = true;
    }
    if (!moved) return;
    this.#release(this.#committedWaiters, this.#committedPosition);
    this.#release(this.#durableWaiters, this.#durablePosition);
  }

  #release(waiters: Waiter[], reached: number): void {
    let n = 0;
    while (n < waiters.length && waiters[n]!.position <= reached) n++;
    if (n === 0) return;
    for (const w of waiters.splice(0, n)) w.resolve();
  }

  #fail(e: Error): void {
    if (this.#failed) return;
    // lmdb-js rejects a failed commit with a generic error whose cause is a second, rejected promise
    // (commitError): take the cause from it (and handle it: left alone it ends the process).
    const causePromise = (e as { commitError?: unknown }).commitError;
    const placeholder = new StorageError(e);
    this.#failed = placeholder;
    this.#writing = false;
    const settle = (cause: unknown): void => {
      const error = cause instanceof Error && cause !== e ? new StorageError(cause) : placeholder;
      this.#failed = error;
      for (const w of [...this.#durableWaiters.splice(0), ...this.#committedWaiters.splice(0)]) w.reject(error);
      for (const l of this.#failureListeners.splice(0)) l(error);
    };
    if (causePromise instanceof Promise) causePromise.then(() => settle(e), settle);
    else settle(e);
  }
}

/** A write to the node's storage failed: the message says why (errno name when there is one). */
export class StorageError extends Error {
  readonly code: string | undefined;
  constructor(cause: Error) {
    const errno = (cause as { code?: unknown }).code;
    const code = typeof errno === 'string' ? errno : typeof errno === 'number' ? errnoName(errno) : undefined;
    super(`storage write failed: ${cause.message}${code !== undefined && !cause.message.includes(code) ? ` (${code})` : ''}`, { cause });
    this.name = 'StorageError';
    this.code = code;
  }
}

/** The symbolic name of a positive errno (lmdb-js reports numbers), or `errno N`. */
function errnoName(n: number): string {
  for (const [name, value] of Object.entries(osConstants.errno)) if (value === n) return name;
  return `errno ${n}`;
}
