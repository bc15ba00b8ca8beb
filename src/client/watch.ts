import { setTimeout as sleep } from 'node:timers/promises';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { Client } from 'undici';
import { SquallError, type WatchEvent } from '../api/index.js';
import { errorFromAnswer, isAbort, isConnectionError, isSlowAnswer } from './exchange.js';
import type { ResolvedClientOptions } from './options.js';
import { Query } from './paths.js';
import type { Endpoint, Router } from './router.js';

export interface WatchOptions {
  /** Changes from this version on (API.md's from_version; first connection only, reconnections resume by event id). */
  fromVersion?: number;
  /** Resume after this event id (an `id` of an earlier WatchChange), as the SSE Last-Event-ID. */
  lastEventId?: string;
  /** Ends the watch: the iterator finishes without an error (as the client's close() does). */
  signal?: AbortSignal;
}

/** One change, with its SSE event id (`<shard>:<version>`) to resume from. */
export interface WatchChange extends WatchEvent {
  id: string;
}

/** Longest SSE line or event the client buffers before it gives up on the stream as malformed. */
const WATCH_EVENT_CHARS_MAX = 1 << 20;

function toChange(m: EventSourceMessage): WatchChange {
  let event: WatchChange;
  try {
    event = JSON.parse(m.data) as WatchChange;
  } catch {
    throw new SquallError('internal', `watch event data is not JSON: ${m.data.slice(0, 200)}`);
  }
  if (typeof event?.key !== 'string' || typeof event.version !== 'number') {
    throw new SquallError('internal', `watch event has no key and version: ${m.data.slice(0, 200)}`);
  }
  event.id = m.id ?? '';
  if (event.shard === undefined) {
    // The id is <shard>:<version>, the shard named like persistent/0/3 or just 3.
    const shardName = event.id.slice(0, event.id.lastIndexOf(':'));
    const shard = Number(shardName.slice(shardName.lastIndexOf('/') + 1));
    event.shard = Number.isSafeInteger(shard) ? shard : 0;
  }
  return event;
}

/** A running watch, as its client's OpenWatches holds it: how to stop it, and its connection. */
interface OpenWatch {
  readonly stop: AbortController;
  /** Its own connection (null until the first connect). */
  client: Client | null;
}

/**
 * The watches of one client that have started and not ended, so that closing the client ends them: each
 * watch has a connection of its own, outside the request pools, that nothing else would close.
 */
export class OpenWatches {
  private readonly running = new Set<OpenWatch>();
  private closed = false;

  /** Watches running now. */
  get size(): number {
    return this.running.size;
  }

  /** Registers a watch that starts; false once the client is closed (the watch must end at once). */
  add(w: OpenWatch): boolean {
    if (this.closed) return false;
    this.running.add(w);
    return true;
  }

  delete(w: OpenWatch): void {
    this.running.delete(w);
  }

  /**
   * Ends every running watch: its stop signal aborts (a pending next() resolves done, a later one too) and its
   * connection is destroyed now; resolves once every connection is closed. Watches started later end at once.
   */
  async close(): Promise<void> {
    this.closed = true;
    const watches = [...this.running];
    this.running.clear();
    for (const w of watches) w.stop.abort();
    await Promise.all(watches.map((w) => w.client?.destroy().catch(() => undefined)));
  }
}

function watchErrorOf(data: string): SquallError {
  let body: unknown;
  try {
    body = JSON.parse(data);
  } catch {
    body = undefined;
  }
  return SquallError.fromBody(500, body);
}

/**
 * GET /v1/watch as an async iterator. A dropped connection (network error, stream end, 503 with Retry-After,
 * an `event: error` of a 503 kind such as a watcher that fell behind) is reopened with Last-Event-ID set to the last event seen, so no change is lost or repeated across a drop;
 * after watchReconnectsMax failures in a row with no event in between it throws `unavailable`. A watch whose
 * stream never opened (no node reachable, a wrong URL) gives up like a request does instead: after
 * retryAttemptsMax attempts with the request back-off, so a mistake is reported in about a second. Each watch has
 * its own connection so a long stream never holds a connection of the request pool. A watch is not key-bound:
 * it goes to any live member (the router's choice), and a reconnection after a failure to another one.
 * The watch is one of `watches` while it runs, so that closing the client ends it (OpenWatches.close).
 */
export async function* watchChanges(
  options: ResolvedClientOptions,
  router: Router,
  watches: OpenWatches,
  prefix: string,
  opts: WatchOptions,
): AsyncGenerator<WatchChange, void, undefined> {
  const self: OpenWatch = { stop: new AbortController(), client: null };
  if (!watches.add(self)) return; // the client is closed
  const signal = opts.signal === undefined ? self.stop.signal : AbortSignal.any([opts.signal, self.stop.signal]);
  let target: Endpoint | null = null;
  let failed: Endpoint | null = null;
  const connectTo = async (): Promise<Client> => {
    let next = router.pick({}, failed);
    if (next === undefined) {
      await router.warm({});
      next = router.pick({}, failed) ?? router.fallback(failed);
    }
    if (self.client === null || next !== target) {
      await self.client?.destroy();
      // Closed while waiting: open no connection that close() has already passed by.
      signal.throwIfAborted();
      self.client = new Client(next.origin, {
        headersTimeout: options.headersTimeoutMs,
        connectTimeout: options.connectTimeoutMs,
        bodyTimeout: 0, // a watch may be quiet for hours
      });
      target = next;
    }
    return self.client;
  };
  const pending: EventSourceMessage[] = [];
  let serverRetryMs: number | undefined;
  const parser = createParser({
    onEvent: (m) => pending.push(m),
    onRetry: (ms) => (serverRetryMs = ms),
    maxBufferSize: WATCH_EVENT_CHARS_MAX,
    onError: (e) => {
      if (e.type === 'max-buffer-size-exceeded') throw new SquallError('internal', `watch stream: ${e.message}`);
    },
  });
  let lastId = opts.lastEventId;
  let failures = 0;
  let opened = false; // a stream was open once (a 200 answer): from then on, reconnections are patient
  try {
    for (;;) {
      if (signal.aborted) return;
      let lastProblem = 'the stream ended';
      let retryAfterMs: number | undefined;
      try {
        const query = new Query().add('prefix', prefix);
        const headers: Record<string, string> = { accept: 'text/event-stream' };
        if (lastId !== undefined && lastId !== '') headers['last-event-id'] = lastId;
        else if (opts.fromVersion !== undefined) query.add('from_version', opts.fromVersion);
        const res = await (await connectTo()).request({ path: '/v1/watch' + query.toString(), method: 'GET', headers, signal });
        if (res.statusCode !== 200) {
          const error = errorFromAnswer(res.statusCode, res.headers, await res.body.text());
          if (res.statusCode !== 503 || error.retryAfterS === undefined) throw error;
          lastProblem = `${error.code}: ${error.message}`;
          retryAfterMs = error.retryAfterS * 1000;
        } else {
          opened = true;
          parser.reset();
          pending.length = 0;
          const decoder = new TextDecoder();
          stream: for await (const chunk of res.body) {
            parser.feed(decoder.decode(chunk as Buffer, { stream: true }));
            for (let i = 0; i < pending.length; i++) {
              if (signal.aborted) return;
              const m = pending[i]!;
              if (m.event === 'error') {
                // The node ends the stream with an error event: a 503 kind (a watcher that fell behind, a node
                // shutting down) is resumed from the last event; anything else is the caller's to see.
                const error = watchErrorOf(m.data);
                if (error.status !== 503) throw error;
                lastProblem = `${error.code}: ${error.message}`;
                break stream;
              }
              const change = toChange(m);
              if (change.id !== '') lastId = change.id;
              failures = 0;
              yield change;
            }
            pending.length = 0;
          }
        }
      } catch (e) {
        if (signal.aborted || isAbort(e)) return;
        if (!isConnectionError(e)) throw e;
        lastProblem = (e as Error).message || String(e);
        if (target !== null && !isSlowAnswer(e)) router.suspect(target);
      }
      failed = target;
      failures++;
      // a watch whose stream never opened gives up like a request; one that opened is patient
      if (failures > options.watchReconnectsMax || (!opened && failures >= options.retryAttemptsMax)) {
        const url = (target as Endpoint | null)?.origin ?? options.origin;
        const what = opened ? `at ${url} lost its stream ${failures} times in a row without an event` : `could not be opened at ${url}: ${failures} attempts`;
        throw new SquallError('unavailable', `watch of '${prefix}' ${what} (last: ${lastProblem})`, {
          url,
          prefix,
          last_event_id: lastId ?? null,
          attempts: failures,
        });
      }
      const backOffMs = opened ? options.watchReconnectDelayMs : options.retryDelayMs;
      const delayMs = Math.min(retryAfterMs ?? serverRetryMs ?? Math.min(backOffMs * 2 ** (failures - 1), options.retryDelayMsMax), options.retryTimeoutMs);
      try {
        await sleep(delayMs, undefined, { signal });
      } catch (e) {
        if (isAbort(e)) return;
        throw e;
      }
    }
  } finally {
    watches.delete(self);
    await self.client?.destroy();
  }
}
