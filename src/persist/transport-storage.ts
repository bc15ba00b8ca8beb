import type { RaggedTrimRecord, RestartState, ShardLogEnd, TransportStorage } from '../transport/storage.js';
import type { View } from '../transport/view.js';
import type { NodeStorage } from './node-storage.js';

/**
 * The view-change protocol's durable storage (transport/storage.ts) on the node's LMDB environment: the
 * last installed view, the ragged trims logged since, and where each shard log held here ends. Every
 * write goes through the node's group commit and is durable before the promise resolves.
 */
const VIEW_KEY = 'group:view';
const TRIM_PREFIX = 'group:trim:';
/** Trims of views before the saved one are useless; at most this many are kept in any case. */
export const TRIMS_KEPT_MAX = 4096;

function trimKey(vid: number, shardIndex: number): string {
  return `${TRIM_PREFIX}${String(vid).padStart(10, '0')}:${String(shardIndex).padStart(5, '0')}`;
}

export class LmdbTransportStorage implements TransportStorage {
  readonly #storage: NodeStorage;
  readonly #shardNames: readonly string[];

  constructor(storage: NodeStorage, shardNames: readonly string[]) {
    this.#storage = storage;
    this.#shardNames = shardNames;
  }

  async saveView(view: View): Promise<void> {
    this.#storage.putMeta(VIEW_KEY, view);
    let n = 0;
    for (const key of this.#storage.meta.getKeys({ start: TRIM_PREFIX, end: trimKey(view.vid, 0) })) {
      this.#storage.removeMeta(key);
      if (++n >= TRIMS_KEPT_MAX) break;
    }
    await this.#storage.durable();
  }

  async logRaggedTrim(record: RaggedTrimRecord): Promise<void> {
    this.#storage.putMeta(trimKey(record.vid, record.shardIndex), record);
    await this.#storage.durable();
  }

  async loadRestartState(): Promise<RestartState | null> {
    const savedView = (this.#storage.meta.get(VIEW_KEY) as View | undefined) ?? null;
    if (savedView === null) return null;
    const trims: RaggedTrimRecord[] = [];
    for (const { value } of this.#storage.meta.getRange({ start: trimKey(savedView.vid, 0), end: TRIM_PREFIX + '~' })) {
      trims.push(value as RaggedTrimRecord);
      if (trims.length >= TRIMS_KEPT_MAX) break;
    }
    const logEnds: Record<string, ShardLogEnd> = {};
    for (const name of this.#shardNames) {
      const end = this.#storage.shardEnd(name);
      if (end) logEnds[name] = { version: end.version, timestampUs: end.timestampUs, complete: end.complete, awaitingFrom: end.awaitingFrom };
    }
    return { savedView, trims, logEnds };
  }
}
