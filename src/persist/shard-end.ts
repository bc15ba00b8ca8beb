import type { Database } from 'lmdb';
import type { GroupCommit, StagedDb } from './group-commit.js';

/**
 * Where this node's copy of a shard ends, kept under `end:<shard>` in the node's metadata database and
 * staged with the writes that move it: the last delivered version made durable here, its timestamp,
 * and whether the copy is whole (false while a state transfer into it is under way). The view-change
 * protocol reads these at a restart to find the longest copy of each shard.
 */
export interface ShardEnd {
  version: number;
  timestampUs: number;
  complete: boolean;
  awaitingFrom: number[];
}

export class ShardEndMarker {
  readonly #key: string;
  readonly #meta: Database<unknown, string>;
  readonly #commits: GroupCommit;
  /** As last staged (undefined: not read yet). */
  #end: ShardEnd | null | undefined = undefined;

  constructor(name: string, meta: Database<unknown, string>, commits: GroupCommit) {
    this.#key = `end:${name}`;
    this.#meta = meta;
    this.#commits = commits;
  }

  get(): ShardEnd | null {
    if (this.#end === undefined) this.#end = (this.#meta.get(this.#key) as ShardEnd | undefined) ?? null;
    return this.#end;
  }

  /** Stages "this copy holds every delivered message up to version". */
  mark(version: number, timestampUs: number): void {
    const previous = this.get();
    this.#stage({ version, timestampUs, complete: previous?.complete ?? true, awaitingFrom: previous?.awaitingFrom ?? [] });
  }

  /** Stages the completeness flag. */
  markComplete(complete: boolean, awaitingFrom: readonly number[]): void {
    const previous = this.get();
    this.#stage({ version: previous?.version ?? -1, timestampUs: previous?.timestampUs ?? 0, complete, awaitingFrom: [...awaitingFrom] });
  }

  /** Forgets the marker at once (the copy is being emptied). */
  clearSync(): void {
    this.#meta.removeSync(this.#key);
    this.#end = null;
  }

  #stage(end: ShardEnd): void {
    this.#end = end;
    this.#commits.put(this.#meta as unknown as StagedDb, this.#key, end);
  }
}
