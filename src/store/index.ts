export * from './config.js';
export * from './store.js';
export { WatchHub, Watcher, type WatchPosition, type ReleasedEvent } from './watch.js';
export { poolInfo, type Pool } from './pools.js';
export type { ShardRunner as ObjectShardRef } from './shard-runner.js';
