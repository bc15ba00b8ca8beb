export * from './client.js';
export { CLIENT_DEFAULTS, type ClientOptions, type ResolvedClientOptions, type RetryInfo } from './options.js';
export { timeArgToUs } from './time-arg.js';
