import { Packr, Unpackr } from 'msgpackr';
import type { ExportCursor, ShardExport } from '../persist/shard-log.js';
import type { StateChunk, StateTransfer, StateTransferHooks } from '../transport/storage.js';
import type { PoolRecord } from './pools.js';
import { ObjectShard } from './object-shard.js';
import type { Store } from './store.js';

/**
 * What the transport's state transfer asks of the store (transport/storage.ts): a donor produces a
 * shard's log tail or whole state as bytes, and a member that needs the shard installs them. Object
 * shards ship raw LMDB records (log entries, index and trim records, time index, request results); the
 * pool metadata shard ships its registry. A donor first waits until its own copy is durable up to the
 * version asked for (what it delivered may still be in its overlay). An object shard moves in chunks of
 * about `chunkBytes` (the transport's stateChunkBytes), installed durably one at a time in order (the
 * transport asks for the next chunk when one arrives, and hands it over once the previous is installed);
 * the registry is one chunk.
 */
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export function stateTransferHooks(store: Store): StateTransferHooks {
  // the generations a retried request can still be looked up in (as ObjectShard computes them)
  const requestGenerationMin = (): number => Math.floor(store.nowUs() / (store.limits.requestIdRetentionMs * 1000)) - 1;
  const objectShard = (name: string) => {
    const s = store.allShards.find((x) => x.name === name);
    if (!s) throw new Error(`no shard ${name} on this member`);
    return s;
  };
  const isMetadata = (name: string): boolean => name === store.metadata.name;
  const ready = async (name: string, version: number): Promise<void> => {
    const runner = isMetadata(name) ? store.metadata : objectShard(name);
    await runner.waitLocallyDurable(version, store.limits.readWaitMsMax);
  };
  const chunk = (name: string, after: number, to: number, cursor: Uint8Array | null, chunkBytes: number): StateChunk => {
    const log = objectShard(name).log;
    const toTimestampUs = log.lastEntryIn(-1, to)?.timestampUs ?? 0;
    const keep = (raw: Buffer): boolean => ObjectShard.requestResultUpTo(raw, to, toTimestampUs);
    const { data, next } = log.exportChunk(after, to, requestGenerationMin(), cursor && decodeCursor(cursor), chunkBytes, keep);
    return { bytes: packr.pack(data), next: next && packr.pack(next) };
  };
  // one install at a time per shard, in arrival order (a chunk of a transfer a view change abandoned may
  // still be installing when the next transfer's first chunk arrives)
  const installing = new Map<string, Promise<void>>();
  const installChunk = async (name: string, transfer: StateTransfer): Promise<void> => {
    if (isMetadata(name)) {
      const { pools } = unpackr.unpack(transfer.bytes) as { pools: PoolRecord[] };
      store.metadata.installState(pools, transfer.toVersion, 0);
      await store.storage.durable();
      store.metadata.stateInstalled(transfer.toVersion);
      return;
    }
    const shard = objectShard(name);
    const data = unpackr.unpack(transfer.bytes) as ShardExport;
    shard.log.importChunk(data, transfer.first && transfer.kind === 'state');
    if (transfer.last) {
      shard.log.end.mark(transfer.toVersion, data.end.timestampUs);
      shard.log.end.markComplete(true, []);
    }
    await store.storage.durable();
    if (transfer.last) shard.stateInstalled(transfer.toVersion);
  };
  return {
    async logTail(name, afterVersion, toVersion, cursor, chunkBytes) {
      if (isMetadata(name)) return null; // the registry is small: always ship it whole
      const end = objectShard(name).log.end.get();
      if (!end || !end.complete || end.version < afterVersion) return null;
      await ready(name, toVersion);
      return chunk(name, afterVersion, toVersion, cursor, chunkBytes);
    },
    async stateAt(name, version, cursor, chunkBytes) {
      await ready(name, version);
      if (isMetadata(name)) return { bytes: packr.pack({ pools: store.metadata.exportState() }), next: null };
      return chunk(name, -1, version, cursor, chunkBytes);
    },
    install(name, transfer) {
      const done = (installing.get(name) ?? Promise.resolve()).catch(() => undefined).then(() => installChunk(name, transfer));
      installing.set(name, done);
      return done;
    },
  };
}

/** A cursor a peer sent back (it came from this code's own exportChunk; checked anyway). */
function decodeCursor(bytes: Uint8Array): ExportCursor {
  const c = unpackr.unpack(bytes) as { p?: unknown; v?: unknown; k?: unknown };
  const pair = (k: unknown): boolean => k === null || (Array.isArray(k) && k.length === 2);
  if ((c.p === 'e' && typeof c.v === 'number') || ((c.p === 't' || c.p === 'r') && pair(c.k))) return c as ExportCursor;
  throw new Error('malformed state-transfer cursor');
}
