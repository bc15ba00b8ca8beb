import type { IncomingHttpHeaders } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import { ERROR_STATUS, HEADER, SquallError, type ErrorCode } from '../api/index.js';
import type { ResolvedClientOptions } from './options.js';
import type { Endpoint, RouteSpec, Router } from './router.js';

/** How the body of a successful answer is read: parsed JSON, raw bytes, or discarded. */
export type ReadMode = 'json' | 'bytes' | 'none';

/** One request of the client; RouteSpec says where it goes (its key, its shard, or any member). */
export interface Call extends RouteSpec {
  method: Dispatcher.HttpMethod;
  /** Path and query, already encoded. */
  path: string;
  headers?: Record<string, string> | undefined;
  body?: Uint8Array | string | undefined;
  read: ReadMode;
  signal?: AbortSignal | undefined;
  /** One attempt only (health probes answer now or not at all). */
  noRetry?: boolean;
  /** A non-2xx status handed back as a reply instead of thrown (e.g. 503 from /readyz). */
  passStatus?: number;
  /** To the first seed, whatever the layout (health probes ask the node the client was given). */
  toSeed?: boolean;
  /**
   * How long the server may hold the answer on purpose (a read's wait_ms for `at` or `version` to become
   * stable): the wait for the response's headers is headersTimeoutMs plus this, so a read that asks the server
   * to wait gets the server's answer (200, or 425 not_yet_stable) rather than a timeout of its own. Default 0.
   */
  serverWaitMs?: number;
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  /** Parsed JSON ('json'), a Buffer ('bytes'), or undefined ('none'). */
  data: unknown;
}

/**
 * Errors of the connection rather than of the request: the request may or may not have reached the node, so
 * it is retried (writes carry a Squall-Request-Id, so a retry is applied once). The timeouts among them are
 * also in SLOW_ANSWER_CODES.
 */
const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

function errorCodeOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * A node that took the request on an open connection and did not answer (or finish answering) in time: it is
 * slow, which is not proof that it is down. The request is retried like after a connection error (a write with
 * the same request id, since it may have been applied), preferably on another member, but the node is not
 * made suspect: one slow request must not steer every other request away from it.
 */
const SLOW_ANSWER_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

export function isConnectionError(e: unknown): boolean {
  const code = errorCodeOf(e);
  return code !== undefined && CONNECTION_ERROR_CODES.has(code);
}

/** A connection error that says the node was slow (a timeout on an open connection), not that it is unreachable. */
export function isSlowAnswer(e: unknown): boolean {
  const code = errorCodeOf(e);
  return code !== undefined && SLOW_ANSWER_CODES.has(code);
}

export function isAbort(e: unknown): boolean {
  return (e as Error | null)?.name === 'AbortError' || errorCodeOf(e) === 'UND_ERR_ABORTED';
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date); undefined when absent or unreadable. */
export function parseRetryAfterS(value: string | string[] | undefined, nowMs = Date.now()): number | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  // HTTP's IMF-fixdate only ("Wed, 25 Nov 2026 12:00:03 GMT"): Date.parse alone accepts far too much.
  if (!/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(value)) return undefined;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - nowMs) / 1000));
}

/** The code an error answer without a JSON body stands for (HEAD answers, proxies). */
function codeForStatus(status: number, headers: IncomingHttpHeaders): ErrorCode | undefined {
  const named = headers[HEADER.errorCode];
  if (typeof named === 'string' && named in ERROR_STATUS) return named as ErrorCode;
  switch (status) {
    case 400: return 'bad_parameter';
    case 404: return headers[HEADER.version] !== undefined || headers[HEADER.deleted] === 'true' ? 'deleted' : 'not_found';
    case 405: return 'method_not_allowed';
    case 409: return 'pool_conflict';
    case 410: return 'trimmed';
    case 412: return 'version_mismatch';
    case 413: return 'too_large';
    case 425: return 'not_yet_stable';
    case 503: return 'unavailable';
    default: return undefined;
  }
}

/** The SquallError an error answer carries: its JSON body when it has one, else its status and headers. */
export function errorFromAnswer(status: number, headers: IncomingHttpHeaders, text: string): SquallError {
  const retryAfterS = parseRetryAfterS(headers['retry-after']);
  let body: unknown = undefined;
  if (text.length > 0) {
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
  }
  let error: SquallError;
  const hasErrorBody = typeof (body as { error?: { code?: unknown } } | undefined)?.error?.code === 'string';
  if (hasErrorBody) {
    error = SquallError.fromBody(status, body, retryAfterS);
  } else {
    const code = codeForStatus(status, headers);
    error = code
      ? new SquallError(code, `${code} (HTTP ${status} without an error body)`, { status }, retryAfterS)
      : new SquallError('internal', `unexpected HTTP ${status} without a Squall error body`, { status, body: text.slice(0, 200) }, retryAfterS);
  }
  // A read that meets a delete says which version deleted the key.
  if (error.code === 'deleted' && error.details.version === undefined) {
    const v = Number(headers[HEADER.version]);
    if (Number.isSafeInteger(v)) error.details.version = v;
  }
  return error;
}

/**
 * One HTTP exchange with the cluster, with the retry policy of the client. Each attempt goes where the router
 * says (a member of the key's shard, or any member). A connection error or a 503 with Retry-After is retried
 * (same request, same Squall-Request-Id) while attempts and time remain, on another member when there is one,
 * after refreshing the layout. A member that does not hold the key's shard (the client's layout is stale)
 * forwards the request, as API.md asks of every node: no answer says "wrong member". Every other non-2xx answer becomes the SquallError it carries.
 */
export class Exchanger {
  constructor(
    private readonly options: ResolvedClientOptions,
    readonly router: Router,
  ) {}

  async exchange(call: Call): Promise<Reply> {
    const o = this.options;
    const router = this.router;
    const attemptsMax = call.noRetry ? 1 : o.retryAttemptsMax;
    const startMs = performance.now();
    let avoid: Endpoint | null = null;
    for (let attempt = 1; ; attempt++) {
      let target: Endpoint | undefined = call.toSeed ? router.seeds[0]! : router.pick(call, avoid);
      if (target === undefined) {
        await router.warm(call);
        target = router.pick(call, avoid) ?? router.fallback(avoid);
      }
      let waitMs: number;
      let failure: SquallError;
      try {
        const res = await target.pool.request({
          path: call.path,
          method: call.method,
          headers: call.headers,
          body: call.body,
          signal: call.signal,
          // null: the pool's own headersTimeoutMs.
          headersTimeout: call.serverWaitMs ? o.headersTimeoutMs + call.serverWaitMs : null,
        });
        const status = res.statusCode;
        if (status < 300 || status === call.passStatus) {
          if (target.suspectUntilMs !== 0) target.suspectUntilMs = 0;
          return { status, headers: res.headers, data: await readBody(res, call.read) };
        }
        failure = errorFromAnswer(status, res.headers, await res.body.text());
        if (attempt >= attemptsMax) throw failure;
        if (status !== 503 || failure.retryAfterS === undefined) throw failure;
        waitMs = failure.retryAfterS * 1000;
        if (performance.now() - startMs + waitMs > o.retryTimeoutMs) throw failure;
        // A member that is going away or has too much to do: others take the retry. A view change or a lost
        // quorum is the whole cluster's, not this member's.
        if (failure.code === 'unavailable' || failure.code === 'overloaded') router.suspect(target);
      } catch (e) {
        if (e instanceof SquallError || isAbort(e)) throw e;
        if (!isConnectionError(e)) {
          // A system error (ENOTFOUND, ...) is a network failure that waiting will not cure; anything else
          // (a bad argument, a closed client) is the caller's and goes up unchanged.
          if (/^E[A-Z]+$/.test(errorCodeOf(e) ?? '')) throw networkError(e, target.origin, attempt, performance.now() - startMs);
          throw e;
        }
        // The next attempt avoids this node either way; only one that could not be reached is suspect.
        if (!isSlowAnswer(e)) router.suspect(target);
        waitMs = Math.min(o.retryDelayMs * 2 ** (attempt - 1), o.retryDelayMsMax);
        failure = networkError(e, target.origin, attempt, performance.now() - startMs);
        if (attempt >= attemptsMax || performance.now() - startMs + waitMs > o.retryTimeoutMs) throw failure;
      }
      const failedAtMs = performance.now();
      if (o.onRetry !== null) {
        const requestId = call.headers?.['squall-request-id'];
        o.onRetry({ method: call.method, path: call.path, requestId, attempt, origin: target.origin, error: failure, waitMs });
      }
      if (waitMs > 0) await sleep(waitMs, undefined, call.signal ? { signal: call.signal } : undefined);
      await router.refreshAfter(failedAtMs);
      if (performance.now() - startMs > o.retryTimeoutMs) throw failure;
      avoid = target;
    }
  }

  close(): Promise<void> {
    return this.router.close();
  }
}

async function readBody(res: Dispatcher.ResponseData, read: ReadMode): Promise<unknown> {
  if (read === 'bytes') {
    const u8 = await res.body.bytes();
    return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
  }
  if (read === 'none') {
    await res.body.dump();
    return undefined;
  }
  const text = await res.body.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new SquallError('internal', `the node answered HTTP ${res.statusCode} with a body that is not JSON`, {
      status: res.statusCode,
      body: text.slice(0, 200),
    });
  }
}

/** A request that never got an answer: `unavailable`, naming the node, the cause and what was tried. */
export function networkError(cause: unknown, origin: string, attempts: number, elapsedMs: number): SquallError {
  const code = errorCodeOf(cause) ?? 'unknown';
  const what = cause instanceof Error ? cause.message : String(cause);
  const err = new SquallError(
    'unavailable',
    `${isSlowAnswer(cause) ? 'no answer in time from' : 'cannot reach'} Squall at ${origin}: ${code}${what && what !== code ? ` (${what})` : ''}; ${attempts} attempt${attempts === 1 ? '' : 's'} in ${Math.round(elapsedMs)} ms`,
    { url: origin, cause_code: code, attempts },
  );
  err.cause = cause;
  return err;
}
