export * from './types.js';
export * from './errors.js';
export * from './keys.js';
export * from './shard-hash.js';
export * from './time.js';
