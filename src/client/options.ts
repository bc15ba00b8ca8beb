import { SquallError } from '../api/index.js';

/**
 * The client's configuration: one typed object, every limit named with its unit, defaults below,
 * validated once when the client is built.
 */
export interface ClientOptions {
  /** Base URL of a Squall node, e.g. http://127.0.0.1:8080 (no path). */
  url: string;
  /** Keep-alive connections the request pool may open to the node. Default 16. */
  connections?: number;
  /** Requests in flight per connection (HTTP/1.1 pipelining; undici pipelines GET/HEAD only). Default 1. */
  pipelining?: number;
  /** Attempts per request in total, first try included (connection errors, 503 with Retry-After). Default 5. */
  retryAttemptsMax?: number;
  /** No retry starts later than this after the first attempt started; also caps a Retry-After wait. Default 10000. */
  retryTimeoutMs?: number;
  /** First back-off after a connection error; doubles per attempt up to retryDelayMsMax. Default 50. */
  retryDelayMs?: number;
  /** Longest back-off between two attempts after a connection error. Default 2000. */
  retryDelayMsMax?: number;
  /** Largest request body (a put's value, an encoded batch) sent; larger fails with too_large unsent. Default 64 MiB. */
  bodySizeBytesMax?: number;
  /** Time to wait for a response's headers. Default 30000 (temporal reads wait up to wait_ms on the server). */
  headersTimeoutMs?: number;
  /** Longest silence while reading a response body (not applied to watch streams). Default 30000. */
  bodyTimeoutMs?: number;
  /** Time to open a TCP connection. Default 5000. */
  connectTimeoutMs?: number;
  /** Check keys and pool paths locally (same rules and error as the server) before sending. Default true. */
  validateKeys?: boolean;
  /** Consecutive failed (re)connections of one watch before it gives up; progress resets the count. Default 10. */
  watchReconnectsMax?: number;
  /** Wait before a watch reconnects (unless the server sent `retry:`); doubles per failure, capped at retryDelayMsMax. Default 250. */
  watchReconnectDelayMs?: number;
}

export type ResolvedClientOptions = Required<ClientOptions> & { origin: string };

export const CLIENT_DEFAULTS = {
  connections: 16,
  pipelining: 1,
  retryAttemptsMax: 5,
  retryTimeoutMs: 10_000,
  retryDelayMs: 50,
  retryDelayMsMax: 2_000,
  bodySizeBytesMax: 64 * 1024 * 1024,
  headersTimeoutMs: 30_000,
  bodyTimeoutMs: 30_000,
  connectTimeoutMs: 5_000,
  validateKeys: true,
  watchReconnectsMax: 10,
  watchReconnectDelayMs: 250,
} as const satisfies Omit<Required<ClientOptions>, 'url'>;

function checkInt(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new SquallError('bad_parameter', `client option ${name} must be an integer >= ${min}, got ${value}`, { option: name });
  }
}

/** Fills defaults and checks every field; throws bad_parameter naming the bad option. */
export function resolveClientOptions(options: ClientOptions): ResolvedClientOptions {
  const o: Required<ClientOptions> = { ...CLIENT_DEFAULTS, ...stripUndefined(options), url: options.url };
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    throw new SquallError('bad_parameter', `client option url is not a URL: '${o.url}'`, { option: 'url' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new SquallError('bad_parameter', `client option url must be http(s), got '${o.url}'`, { option: 'url' });
  }
  if (url.pathname !== '/' || url.search !== '') {
    throw new SquallError('bad_parameter', `client option url must have no path or query, got '${o.url}'`, { option: 'url' });
  }
  checkInt('connections', o.connections, 1);
  checkInt('pipelining', o.pipelining, 1);
  checkInt('retryAttemptsMax', o.retryAttemptsMax, 1);
  checkInt('retryTimeoutMs', o.retryTimeoutMs, 0);
  checkInt('retryDelayMs', o.retryDelayMs, 0);
  checkInt('retryDelayMsMax', o.retryDelayMsMax, o.retryDelayMs);
  checkInt('bodySizeBytesMax', o.bodySizeBytesMax, 0);
  checkInt('headersTimeoutMs', o.headersTimeoutMs, 1);
  checkInt('bodyTimeoutMs', o.bodyTimeoutMs, 1);
  checkInt('connectTimeoutMs', o.connectTimeoutMs, 1);
  checkInt('watchReconnectsMax', o.watchReconnectsMax, 0);
  checkInt('watchReconnectDelayMs', o.watchReconnectDelayMs, 0);
  return { ...o, origin: url.origin };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
