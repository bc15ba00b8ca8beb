import { Packr, Unpackr } from 'msgpackr';
import type { ShardExport } from '../persist/shard-log.js';
import type { StateTransfer, StateTransferHooks } from '../transport/storage.js';
import type { PoolRecord } from './pools.js';
import type { Store } from './store.js';

/**
 * What the transport's state transfer asks of the store (transport/storage.ts): a donor produces a
 * shard's log tail or whole state as bytes, and a member that needs the shard installs them. Object
 * shards ship raw LMDB records (log entries, index and trim records, time index, request results); the
 * pool metadata shard ships its registry. A donor first waits until its own copy is durable up to the
 * version asked for (what it delivered may still be in its overlay).
 */
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export function stateTransferHooks(store: Store): StateTransferHooks {
  const requestGenerationMin = (): number => Math.floor(Date.now() / store.limits.requestIdRetentionMs) - 1;
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
  return {
    async logTail(name, afterVersion, toVersion) {
      if (isMetadata(name)) return null; // the registry is small: always ship it whole
      const shard = objectShard(name);
      const end = shard.log.end.get();
      if (!end || !end.complete || end.version < afterVersion) return null;
      await ready(name, toVersion);
      return packr.pack(shard.log.exportRange(afterVersion, toVersion, requestGenerationMin()));
    },
    async stateAt(name, version) {
      await ready(name, version);
      if (isMetadata(name)) return packr.pack({ pools: store.metadata.exportState() });
      return packr.pack(objectShard(name).log.exportRange(-1, version, requestGenerationMin()));
    },
    async install(name, transfer: StateTransfer) {
      if (isMetadata(name)) {
        const { pools } = unpackr.unpack(transfer.bytes) as { pools: PoolRecord[] };
        store.metadata.installState(pools, transfer.toVersion, 0);
        await store.storage.durable();
        store.metadata.stateInstalled(transfer.toVersion);
        return;
      }
      const shard = objectShard(name);
      const data = unpackr.unpack(transfer.bytes) as ShardExport;
      shard.log.importRange(data, transfer.kind === 'state');
      shard.log.end.mark(transfer.toVersion, data.end.timestampUs);
      shard.log.end.markComplete(true, []);
      await store.storage.durable();
      shard.stateInstalled(transfer.toVersion);
    },
  };
}
