export * from './addon.js';
export * from './config.js';
export * from './endpoint.js';
export * from './guarded-table.js';
export * from './message-ring.js';
