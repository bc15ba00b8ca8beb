export * from './config.js';
export * from './store.js';
export { WatchHub, Watcher, type WatchPosition, type ReleasedEvent } from './watch.js';
export { poolInfo, type Pool } from './pools.js';
export type { ShardRunner as ObjectShardRef } from './shard-runner.js';
export { stateTransferHooks } from './state-transfer.js';
export type { RemoteCalls, RemoteMethod } from './remote.js';
export { encodeRemoteRequest, decodeRemoteRequest, encodeRemoteReply, encodeRemoteError, decodeRemoteReply } from './remote.js';
