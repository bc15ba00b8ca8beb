import { SquallError } from '../api/errors.js';
import type { WatchEvent } from '../api/types.js';
import { assert } from '../assert.js';
import type { Logger } from '../log.js';
import type { StoreLimits } from './config.js';
import type { ObjectShard, ShardEvent } from './object-shard.js';

/**
 * Watch feeds. Changes are released to watchers only once they are below the stability frontier of every
 * shard (durable, and nothing earlier can still arrive), in one total order across shards:
 * (timestamp, shard order, version). So per shard events arrive in version order, and a watcher that
 * reconnects with the id of the last event it saw resumes exactly after it: everything before it in that
 * order was already sent, everything after it is replayed from the shards' logs.
 *
 * Event ids are `<shard name>:<version>`, e.g. `persistent/0/1:4294967301`.
 *
 * Invariants: released events are never buffered again; a watcher never receives an event at or before
 * its position; per watcher, events are strictly increasing in (timestamp, shard order, version).
 */
export interface WatchPosition {
  /** Per shard (by order), versions at or below this are already seen. */
  afterVersion: number[];
  /** Exclusive lower bound in the total order, or null when the per-shard versions say it all. */
  after: Position | null;
}

/** An applied change waiting to be released. */
type Pending = ShardEvent;

/** A place in the total order of released events. */
export interface Position {
  timestampUs: number;
  order: number;
  version: number;
}

type Released = WatchEvent & { id: string; order: number };

function positionOf(e: Released): Position {
  return { timestampUs: e.timestamp_us, order: e.order, version: e.version };
}

function isAfter(a: Position, b: Position): boolean {
  if (a.timestampUs !== b.timestampUs) return a.timestampUs > b.timestampUs;
  if (a.order !== b.order) return a.order > b.order;
  return a.version > b.version;
}

/**
 * One watcher: an async iterator over events. Replayed (historical) events are handed out first; live
 * events queue (bounded) until the replay is done. Anything at or before the last handed-out event is
 * dropped, so replay and live may overlap without duplicates.
 */
export class Watcher implements AsyncIterable<Released> {
  readonly prefix: string;
  readonly #hub: WatchHub;
  readonly #queueMax: number;
  #replayQueue: Released[] = [];
  #liveQueue: Released[] = [];
  #live = false;
  #waiting: { resolve(r: IteratorResult<Released>): void; reject(e: Error): void } | null = null;
  #error: Error | null = null;
  #done = false;
  #last: Position | null;

  constructor(hub: WatchHub, prefix: string, queueMax: number, last: Position | null) {
    this.#hub = hub;
    this.prefix = prefix;
    this.#queueMax = queueMax;
    this.#last = last;
  }

  /** Hub: a released live event (prefix already matched). */
  offer(e: Released): void {
    if (this.#done) return;
    if (this.#liveQueue.length >= this.#queueMax) {
      this.fail(new SquallError('overloaded', `watcher fell more than ${this.#queueMax} events behind; reconnect with Last-Event-ID to resume`, {}, 1));
      return;
    }
    this.#liveQueue.push(e);
    this.#pump();
  }

  /** Hub: a historical event from the replay. */
  replayed(e: Released): void {
    if (this.#done) return;
    this.#replayQueue.push(e);
    this.#pump();
  }

  /** Hub: the replay is over; live events flow. */
  goLive(): void {
    this.#live = true;
    this.#pump();
  }

  get closed(): boolean {
    return this.#done;
  }

  /** Replay backpressure: resolves when the consumer has taken most of what was replayed. */
  async drained(): Promise<void> {
    while (!this.#done && this.#replayQueue.length >= this.#queueMax) await new Promise((r) => setTimeout(r, 5));
  }

  fail(e: Error): void {
    if (this.#done) return;
    this.#error = e;
    this.#finish();
  }

  close(): void {
    this.#finish();
  }

  next(): Promise<IteratorResult<Released>> {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.#pump();
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<Released> {
    return {
      next: () => this.next(),
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  #pump(): void {
    while (this.#waiting) {
      const e = this.#replayQueue.length > 0 ? this.#replayQueue.shift()! : this.#live ? this.#liveQueue.shift() : undefined;
      if (!e) return;
      const p = positionOf(e);
      if (this.#last && !isAfter(p, this.#last)) continue;
      this.#last = p;
      const w = this.#waiting;
      this.#waiting = null;
      w.resolve({ value: e, done: false });
    }
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#hub.remove(this);
    this.#replayQueue = [];
    this.#liveQueue = [];
    const w = this.#waiting;
    this.#waiting = null;
    if (w) {
      if (this.#error) w.reject(this.#error);
      else w.resolve({ value: undefined, done: true });
    }
  }
}

/** A shard's released changes after a version, from a member that orders it (cluster). */
export type RemotePull = (
  shard: ObjectShard,
  afterVersion: number,
  eventsMax: number,
  waitMs: number,
  atUs?: number,
) => Promise<{ events: Array<[number, string, number, boolean, number]>; frontierUs: number; releasedVersion: number }>;

/** Events a pull fetches at most, and how long a pull waits for one. */
const PULL_EVENTS_MAX = 1024;
const PULL_WAIT_MS = 250;

export class WatchHub {
  readonly #shards: ObjectShard[];
  readonly #limits: StoreLimits;
  readonly #logger: Logger;
  readonly #remotePull: RemotePull | null;
  /** Per shard ordered elsewhere: the last version pulled into #pending, and that shard's frontier (null: not yet known). */
  readonly #remote: Array<{ after: number; frontierUs: number | null; pulling: boolean }>;
  /** Per shard (by order): applied events not yet released, ascending versions. */
  #pending: Pending[][];
  readonly #watchers = new Set<Watcher>();
  /** Every event with timestamp < this has been released. */
  #releasedBelowUs = 0;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(shards: ObjectShard[], limits: StoreLimits, logger: Logger, remotePull: RemotePull | null = null) {
    this.#shards = shards;
    this.#limits = limits;
    this.#logger = logger;
    this.#remotePull = remotePull;
    this.#pending = shards.map(() => []);
    this.#remote = shards.map(() => ({ after: -1, frontierUs: null, pulling: false }));
    for (const s of shards) {
      assert(this.#shards[s.info.order] === s, 'shard order matches position');
      s.onChange = (e) => this.#applied(e);
    }
  }

  /**
   * Cluster: follow the shards this member does not order, by long-poll pulls to members that do, so
   * their changes and frontiers enter the same release order as local ones. Re-checked every round (a
   * member may start or stop ordering a shard).
   */
  startPulling(): void {
    if (!this.#remotePull) return;
    for (const shard of this.#shards) void this.#pullLoop(shard);
  }

  async #pullLoop(shard: ObjectShard): Promise<void> {
    const r = this.#remote[shard.info.order]!;
    if (r.pulling) return;
    r.pulling = true;
    try {
      while (!this.#closed) {
        if (shard.serving) {
          r.frontierUs = null; // local: its own frontier counts
          await new Promise((res) => setTimeout(res, PULL_WAIT_MS));
          continue;
        }
        try {
          if (r.frontierUs === null) {
            // start from what that shard has released now
            const first = await this.#remotePull!(shard, Number.MAX_SAFE_INTEGER, 0, 0);
            r.after = first.releasedVersion;
            r.frontierUs = first.frontierUs;
            continue;
          }
          const got = await this.#remotePull!(shard, r.after, PULL_EVENTS_MAX, PULL_WAIT_MS);
          for (const [version, key, timestampUs, deleted, size] of got.events) {
            this.#pending[shard.info.order]!.push({ shard, key, version, timestampUs, deleted, size });
            r.after = version;
          }
          r.frontierUs = Math.max(r.frontierUs, got.frontierUs);
          this.#ensureTimer();
        } catch (e) {
          this.#logger.debug({ shard: shard.name, err: (e as Error).message }, 'watch pull failed; retrying');
          await new Promise((res) => setTimeout(res, PULL_WAIT_MS));
        }
      }
    } finally {
      r.pulling = false;
    }
  }

  /** The stability frontier of a shard as this member knows it (0 while a remote one is not known yet). */
  #frontierOf(s: ObjectShard): number {
    if (s.serving || !this.#remotePull) return s.frontiers.stabilityFrontierUs;
    return this.#remote[s.info.order]!.frontierUs ?? 0;
  }

  #ensureTimer(): void {
    if (!this.#timer && !this.#closed) this.#timer = setInterval(() => this.#release(), this.#limits.watchTickMs);
  }

  get watchers(): number {
    return this.#watchers.size;
  }

  #applied(e: ShardEvent): void {
    this.#pending[e.shard.info.order]!.push(e);
    this.#ensureTimer();
  }

  /** Releases every pending event below the global stability frontier, in total order. */
  #release(): void {
    let frontierUs = Infinity;
    for (const s of this.#shards) frontierUs = Math.min(frontierUs, this.#frontierOf(s));
    if (frontierUs > this.#releasedBelowUs) this.#releasedBelowUs = frontierUs;
    const watched = this.#watchers.size > 0;
    let out: Pending[] = [];
    let remaining = 0;
    for (let i = 0; i < this.#pending.length; i++) {
      const list = this.#pending[i]!;
      let n = 0;
      while (n < list.length && list[n]!.timestampUs < frontierUs) n++;
      if (n === list.length) {
        if (watched) out = out.length === 0 ? list : out.concat(list);
        this.#pending[i] = [];
      } else if (n > 0) {
        const released = list.splice(0, n);
        if (watched) out = out.length === 0 ? released : out.concat(released);
      }
      remaining += this.#pending[i]!.length;
    }
    if (remaining === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
    if (out.length === 0) return;
    out.sort((a, b) => a.timestampUs - b.timestampUs || a.shard.info.order - b.shard.info.order || a.version - b.version);
    for (const p of out) {
      const e = toReleased(p.shard, p.key, p.version, p.timestampUs, p.deleted, p.size);
      for (const w of this.#watchers) if (e.key.startsWith(w.prefix)) w.offer(e);
    }
  }

  /** Parses a Last-Event-ID (`<shard name>:<version>`) into a position. */
  async positionFromEventId(id: string): Promise<WatchPosition> {
    const i = id.lastIndexOf(':');
    const shard = this.#shards.find((s) => s.name === id.slice(0, i));
    const version = Number(id.slice(i + 1));
    if (i < 0 || !shard || !Number.isSafeInteger(version) || version < 0) {
      throw new SquallError('bad_parameter', `Last-Event-ID '${id}' is not an event id of this cluster (<shard>:<version>)`, { last_event_id: id });
    }
    const local = (s: ObjectShard): boolean => s.serving || !this.#remotePull;
    let ts: number | undefined;
    if (local(shard)) {
      ts = shard.log.entry(version)?.timestampUs;
      // trimmed since: the next entry of that shard bounds it from above
      if (ts === undefined) for (const { entry } of shard.log.entriesAfter(version, 1)) ts = entry.timestampUs;
    } else {
      const got = await this.#remotePull!(shard, version - 1, 1, 0);
      ts = got.events[0]?.[2];
    }
    if (ts === undefined) ts = this.#frontierOf(shard);
    const me = shard.info.order;
    const at = ts;
    const afterVersion = await Promise.all(
      this.#shards.map(async (s) => {
        if (s.info.order === me) return version;
        const t = s.info.order > me ? at - 1 : at;
        if (local(s)) return s.log.versionAtTime(t);
        return (await this.#remotePull!(s, Number.MAX_SAFE_INTEGER, 0, 0, t)).releasedVersion;
      }),
    );
    return { after: { timestampUs: ts, order: me, version }, afterVersion };
  }

  /** Position "every shard from version v on". */
  positionFromVersion(version: number): WatchPosition {
    return { after: null, afterVersion: this.#shards.map(() => version - 1) };
  }

  /**
   * Starts a watcher at `position` (null: from now). Replays from the logs what was released before it
   * joined, then follows released events live.
   */
  subscribe(prefix: string, position: WatchPosition | null): Watcher {
    if (this.#closed) throw new SquallError('unavailable', 'the store is shutting down', {}, 1);
    if (this.#watchers.size >= this.#limits.watchersMax) {
      throw new SquallError('overloaded', `too many watchers (${this.#limits.watchersMax})`, {}, 5);
    }
    this.#release();
    const releasedBelow = this.#releasedBelowUs;
    const startLast: Position | null = position === null ? { timestampUs: releasedBelow - 1, order: Infinity, version: Infinity } : position.after;
    const w = new Watcher(this, prefix, this.#limits.watchQueueEventsMax, startLast);
    this.#watchers.add(w);
    if (position === null) {
      w.goLive();
    } else {
      void this.#replay(w, position, releasedBelow).then(
        () => w.goLive(),
        (e: unknown) => {
          this.#logger.warn({ err: e }, 'watch replay failed');
          w.fail(e as Error);
        },
      );
    }
    return w;
  }

  /** Reads each shard's log after the position up to (excluding) releasedBelowUs, merged in total order. */
  async #replay(w: Watcher, position: WatchPosition, releasedBelowUs: number): Promise<void> {
    const chunk = 256;
    const cursors = this.#shards.map((shard, i) => ({ shard, after: position.afterVersion[i] ?? -1, buffer: [] as Released[], exhausted: false }));
    const fill = async (c: (typeof cursors)[number]): Promise<void> => {
      if (c.exhausted || c.buffer.length > 0) return;
      if (!c.shard.serving && this.#remotePull) {
        const got = await this.#remotePull(c.shard, c.after, chunk, 0);
        for (const [version, key, timestampUs, deleted, size] of got.events) {
          c.after = version;
          if (timestampUs >= releasedBelowUs) {
            c.exhausted = true;
            return;
          }
          c.buffer.push(toReleased(c.shard, key, version, timestampUs, deleted, size));
        }
        if (got.events.length < chunk) c.exhausted = true;
        return;
      }
      let read = 0;
      for (const { version, entry } of c.shard.log.entriesAfter(c.after, chunk)) {
        read++;
        c.after = version;
        // timestamps never decrease along a shard's versions: the first unreleased one ends this shard
        if (entry.timestampUs >= releasedBelowUs) {
          c.exhausted = true;
          return;
        }
        c.buffer.push(toReleased(c.shard, entry.key, version, entry.timestampUs, entry.deleted, entry.value.byteLength));
      }
      if (read < chunk) c.exhausted = true;
    };
    for (;;) {
      let best: (typeof cursors)[number] | null = null;
      for (const c of cursors) {
        await fill(c);
        const head = c.buffer[0];
        if (head && (!best || isAfter(positionOf(best.buffer[0]!), positionOf(head)))) best = c;
      }
      if (!best || w.closed) return;
      const e = best.buffer.shift()!;
      if (e.key.startsWith(w.prefix)) {
        w.replayed(e);
        await w.drained();
      }
    }
  }

  /**
   * For a watcher on another member: this shard's released changes after `afterVersion` (at most
   * eventsMax), waiting up to waitMs for one; with the shard's stability frontier, below which the
   * caller has every change of this shard.
   */
  async pull(
    shard: ObjectShard,
    afterVersion: number,
    eventsMax: number,
    waitMs: number,
    atUs = Infinity,
  ): Promise<{ events: Array<[number, string, number, boolean, number]>; frontierUs: number; releasedVersion: number }> {
    const deadline = Date.now() + Math.max(0, waitMs);
    for (;;) {
      const frontierUs = shard.frontiers.stabilityFrontierUs;
      const events: Array<[number, string, number, boolean, number]> = [];
      if (eventsMax > 0) {
        for (const { version, entry } of shard.log.entriesAfter(afterVersion, eventsMax)) {
          if (entry.timestampUs >= frontierUs) break;
          events.push([version, entry.key, entry.timestampUs, entry.deleted, entry.value.byteLength]);
        }
      }
      if (events.length > 0 || Date.now() >= deadline || this.#closed) {
        return { events, frontierUs, releasedVersion: shard.log.versionAtTime(Math.min(frontierUs - 1, atUs)) };
      }
      await new Promise((r) => setTimeout(r, this.#limits.watchTickMs));
    }
  }

  remove(w: Watcher): void {
    this.#watchers.delete(w);
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    for (const w of [...this.#watchers]) w.fail(new SquallError('unavailable', 'the store is shutting down', {}, 1));
  }
}

function toReleased(shard: ObjectShard, key: string, version: number, timestampUs: number, deleted: boolean, size: number): Released {
  return {
    id: `${shard.name}:${version}`,
    order: shard.info.order,
    key,
    version,
    timestamp_us: timestampUs,
    op: deleted ? 'delete' : 'put',
    size,
    shard: shard.info.index,
  };
}

export type { Released as ReleasedEvent };
