import { SquallError } from '../api/index.js';

/** What the client tells onRetry before it retries a request. */
export interface RetryInfo {
  method: string;
  /** Path and query of the request. */
  path: string;
  /** The Squall-Request-Id it carries (writes): the same on every attempt. */
  requestId: string | undefined;
  /** The attempt that failed (1 = the first). */
  attempt: number;
  /** The node that attempt went to. */
  origin: string;
  /** Why it failed: the error answer (503 + Retry-After) or the network failure (unavailable). */
  error: SquallError;
  /** The wait before the next attempt. */
  waitMs: number;
}

/**
 * The client's configuration: one typed object, every limit named with its unit, defaults below,
 * validated once when the client is built.
 */
export interface ClientOptions {
  /**
   * Base URL of a Squall node, e.g. http://127.0.0.1:8080: scheme, host and port only (a path, query, fragment or
   * user:password@ is refused). Give url, urls, or both (url comes first).
   */
  url?: string;
  /**
   * Seed URLs of members of one cluster: the client reads the layout from the first that answers, and sends
   * requests that are not key-bound to them (in order, skipping suspects) while it has no layout.
   */
  urls?: readonly string[];
  /**
   * Read the cluster layout (GET /v1/cluster) and pools' shard counts, and send each key-bound request straight
   * to a member of its key's shard. With false, or while the layout is unknown or has one member, every request
   * goes to the seeds (a node forwards what it does not hold). Default true.
   */
  routing?: boolean;
  /** Age after which the cached layout and pool info are fetched again (in the background, when next used). Default 30000. */
  layoutRefreshIntervalMs?: number;
  /** Longest time one layout or pool-info fetch may take, over all the nodes it tries. Default 2000. */
  layoutFetchTimeoutMs?: number;
  /** How long a member that failed (connection error, 503 unavailable/overloaded) is passed over when choosing where to send. Default 3000. */
  memberSuspectMs?: number;
  /** Pool paths whose info (or absence) is cached. Default 1024. */
  poolCacheEntriesMax?: number;
  /** Key directories whose pool is cached: the step that makes routing a key O(1). Default 16384. */
  directoryCacheEntriesMax?: number;
  /** Keep-alive connections the request pool may open to the node. Default 16. */
  connections?: number;
  /** Requests in flight per connection (HTTP/1.1 pipelining; undici pipelines GET/HEAD only). Default 1. */
  pipelining?: number;
  /**
   * Attempts per request in total, first try included (connection errors, 503 with Retry-After). Default 10: with
   * the default back-off about 9 s of retrying, enough to ride out a member's restart or a whole cluster's.
   */
  retryAttemptsMax?: number;
  /**
   * No retry starts later than this after the first attempt started; also caps a Retry-After wait. Keep it above
   * headersTimeoutMs, or an attempt that timed out (a stalled member) is never retried elsewhere. Default 30000.
   */
  retryTimeoutMs?: number;
  /** First back-off after a connection error; doubles per attempt up to retryDelayMsMax. Default 50. */
  retryDelayMs?: number;
  /** Longest back-off between two attempts after a connection error. Default 2000. */
  retryDelayMsMax?: number;
  /** Called before each retry (for logs and tests); it runs inside the request, so it must not throw. Default null. */
  onRetry?: ((info: RetryInfo) => void) | null;
  /** Largest request body (a put's value, an encoded batch) sent; larger fails with too_large unsent. Default 64 MiB. */
  bodySizeBytesMax?: number;
  /**
   * Time to wait for a response's headers, on top of the wait a read at a time or version allows the server
   * (its waitMs, else the server's default 2000). A timeout is retried like a connection error (a write with the
   * same request id), on another member when there is one, but does not make the member suspect. Default 10000.
   */
  headersTimeoutMs?: number;
  /** Longest silence while reading a response body (not applied to watch streams). Default 30000. */
  bodyTimeoutMs?: number;
  /** Time to open a TCP connection. Default 5000. */
  connectTimeoutMs?: number;
  /** Check keys and pool paths locally (same rules and error as the server) before sending: true or false. Default true. */
  validateKeys?: boolean;
  /** Consecutive failed reconnections of a watch whose stream opened before it gives up; progress resets the count. (A watch that never opened gives up after retryAttemptsMax, like a request.) Default 10. */
  watchReconnectsMax?: number;
  /** Wait before a watch reconnects (unless the server sent `retry:`); doubles per failure, capped at retryDelayMsMax. Default 250. */
  watchReconnectDelayMs?: number;
}

export type ResolvedClientOptions = Required<Omit<ClientOptions, 'url' | 'urls'>> & {
  /** The first seed's origin. */
  url: string;
  /** Every seed's origin, `url` first, without duplicates. */
  urls: readonly string[];
  /** Same as url (the name the single-node client used). */
  origin: string;
};

export const CLIENT_DEFAULTS = {
  routing: true,
  layoutRefreshIntervalMs: 30_000,
  layoutFetchTimeoutMs: 2_000,
  memberSuspectMs: 3_000,
  poolCacheEntriesMax: 1024,
  directoryCacheEntriesMax: 16_384,
  connections: 16,
  pipelining: 1,
  retryAttemptsMax: 10,
  onRetry: null,
  retryTimeoutMs: 30_000,
  retryDelayMs: 50,
  retryDelayMsMax: 2_000,
  bodySizeBytesMax: 64 * 1024 * 1024,
  headersTimeoutMs: 10_000,
  bodyTimeoutMs: 30_000,
  connectTimeoutMs: 5_000,
  validateKeys: true,
  watchReconnectsMax: 10,
  watchReconnectDelayMs: 250,
} as const satisfies Omit<Required<ClientOptions>, 'url' | 'urls'>;

function checkInt(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new SquallError('bad_parameter', `client option ${name} must be an integer >= ${min}, got ${value}`, { option: name });
  }
}

function checkBoolean(name: string, value: unknown): void {
  if (typeof value !== 'boolean') {
    throw new SquallError('bad_parameter', `client option ${name} must be true or false, got ${JSON.stringify(value) ?? String(value)}`, { option: name });
  }
}

/** Every option the client knows; any other name is refused (a misspelt option must not be ignored). */
const OPTION_NAMES: ReadonlySet<string> = new Set(['url', 'urls', ...Object.keys(CLIENT_DEFAULTS)]);

function checkOptionNames(options: object): void {
  for (const [name, value] of Object.entries(options)) {
    if (value !== undefined && !OPTION_NAMES.has(name)) {
      throw new SquallError('bad_parameter', `unknown client option '${name}'`, { option: name });
    }
  }
}

/**
 * The origin of a seed URL. Only scheme, host and port are used, so a URL with anything else (a path, a query,
 * a fragment, or credentials, which the client would drop unsent) is refused rather than silently cut down.
 */
function originOf(text: unknown, option: string): string {
  const shown = String(text);
  let url: URL;
  try {
    url = new URL(shown);
  } catch {
    throw new SquallError('bad_parameter', `client option ${option} is not a URL: '${shown}'`, { option });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new SquallError('bad_parameter', `client option ${option} must be http(s), got '${shown}'`, { option });
  }
  if (url.username !== '' || url.password !== '' || /^[a-z]+:\/\/[^/]*@/i.test(shown)) {
    // Not echoed: the text holds a secret.
    throw new SquallError('bad_parameter', `client option ${option} must not carry credentials (user:password@); the client does not send them`, { option });
  }
  // An empty `?` or `#` leaves search and hash empty: look at the text too.
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || shown.includes('?') || shown.includes('#')) {
    throw new SquallError('bad_parameter', `client option ${option} must have no path, query or fragment, got '${shown}'`, { option });
  }
  return url.origin;
}

/** Fills defaults and checks every field; throws bad_parameter naming the bad option (or the unknown one). */
export function resolveClientOptions(options: ClientOptions): ResolvedClientOptions {
  if (typeof options !== 'object' || options === null) throw new SquallError('bad_parameter', 'client options must be an object or a URL', { option: 'url' });
  checkOptionNames(options);
  const { url: _url, urls: _urls, ...rest } = stripUndefined(options);
  const o: Required<Omit<ClientOptions, 'url' | 'urls'>> = { ...CLIENT_DEFAULTS, ...rest };
  if (options.urls !== undefined && !Array.isArray(options.urls)) {
    throw new SquallError('bad_parameter', 'client option urls must be an array of URLs', { option: 'urls' });
  }
  const seeds: string[] = [];
  if (options.url !== undefined) seeds.push(originOf(options.url, 'url'));
  for (const u of options.urls ?? []) {
    const origin = originOf(u, 'urls');
    if (!seeds.includes(origin)) seeds.push(origin);
  }
  if (seeds.length === 0) throw new SquallError('bad_parameter', 'give the client a url or urls (seed nodes)', { option: 'url' });
  checkBoolean('routing', o.routing);
  checkBoolean('validateKeys', o.validateKeys);
  if (o.onRetry !== null && typeof o.onRetry !== 'function') throw new SquallError('bad_parameter', 'client option onRetry must be a function', { option: 'onRetry' });
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
  checkInt('layoutRefreshIntervalMs', o.layoutRefreshIntervalMs, 1);
  checkInt('layoutFetchTimeoutMs', o.layoutFetchTimeoutMs, 1);
  checkInt('memberSuspectMs', o.memberSuspectMs, 0);
  checkInt('poolCacheEntriesMax', o.poolCacheEntriesMax, 1);
  checkInt('directoryCacheEntriesMax', o.directoryCacheEntriesMax, 1);
  return { ...o, url: seeds[0]!, urls: seeds, origin: seeds[0]! };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
