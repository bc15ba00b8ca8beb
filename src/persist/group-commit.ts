import type { Database, Key, RootDatabase } from 'lmdb';
import { assert } from '../assert.js';

/**
 * Group commit aligned with the disk sync. Writes are staged in memory in order; one LMDB transaction
 * takes everything staged (up to `commitWritesMax`) and the next one starts only when that one is synced,
 * so while the disk syncs, new writes gather into the next transaction. Throughput then grows with the
 * sync time instead of being capped by it (one sync per event-loop turn would cap it).
 *
 * The layers above read staged-but-uncommitted data from their own overlays; LMDB readers see a write
 * once its transaction commits.
 *
 * Invariants: writes reach LMDB in staging order; a waiter for position p resolves only after a
 * transaction holding every write up to p is synced (durable) or committed (visible); positions grow.
 */
const REMOVE = Symbol('remove');
/** Any of the environment's databases, as the stage sees it. */
export type StagedDb = Database<unknown, Key>;
type StagedWrite = [db: StagedDb, key: Key, value: unknown];

interface Waiter {
  position: number;
  resolve(): void;
  reject(e: Error): void;
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
  #inFlight = false;
  #scheduled = false;
  #failed: Error | null = null;

  constructor(root: RootDatabase, commitWritesMax: number) {
    assert(commitWritesMax >= 1, 'commitWritesMax must be ≥ 1');
    this.#root = root;
    this.#commitWritesMax = commitWritesMax;
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
    if (position <= reached && !this.#inFlight) {
      // nothing of ours pending; still cover direct writes made outside the stage
      return Promise.resolve(this.#root.flushed).then(() => undefined);
    }
    return new Promise<void>((resolve, reject) => {
      waiters.push({ position, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#inFlight || this.#failed) return;
    this.#scheduled = true;
    // after the current turn, so everything staged in it shares the transaction
    setImmediate(() => {
      this.#scheduled = false;
      this.#commit();
    });
  }

  #commit(): void {
    if (this.#inFlight || this.#failed) return;
    const take = Math.min(this.#staged.length, this.#commitWritesMax);
    const hasWaiters = this.#durableWaiters.length > 0 || this.#committedWaiters.length > 0;
    if (take === 0 && !hasWaiters) return;
    this.#inFlight = true;
    const batch = take === this.#staged.length ? this.#staged : this.#staged.slice(0, take);
    this.#staged = take === this.#staged.length ? [] : this.#staged.slice(take);
    const upTo = this.#position - this.#staged.length;
    // everything below is one LMDB transaction: lmdb-js batches the writes of one turn
    for (const [db, key, value] of batch) {
      if (value === REMOVE) db.remove(key);
      else db.put(key, value);
    }
    const committed = Promise.resolve(this.#root.committed);
    const flushed = Promise.resolve(this.#root.flushed);
    committed.then(() => {
      this.#committedPosition = Math.max(this.#committedPosition, upTo);
      this.#release(this.#committedWaiters, this.#committedPosition);
    }, (e: unknown) => this.#fail(e as Error));
    flushed.then(
      () => {
        this.#committedPosition = Math.max(this.#committedPosition, upTo);
        this.#durablePosition = upTo;
        this.#release(this.#committedWaiters, this.#committedPosition);
        this.#release(this.#durableWaiters, this.#durablePosition);
        this.#inFlight = false;
        if (this.#staged.length > 0 || this.#durableWaiters.length > 0 || this.#committedWaiters.length > 0) this.#commit();
      },
      (e: unknown) => this.#fail(e as Error),
    );
  }

  #release(waiters: Waiter[], reached: number): void {
    let n = 0;
    while (n < waiters.length && waiters[n]!.position <= reached) n++;
    if (n === 0) return;
    for (const w of waiters.splice(0, n)) w.resolve();
  }

  #fail(e: Error): void {
    if (this.#failed) return;
    this.#failed = e;
    this.#inFlight = false;
    for (const w of [...this.#durableWaiters.splice(0), ...this.#committedWaiters.splice(0)]) w.reject(e);
  }
}
