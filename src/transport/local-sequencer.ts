import { assert, fail } from '../assert.js';
import type { ClockUs } from './clock.js';
import { HybridClock } from './hlc.js';
import type { Delivered, OrderedShard, ShardFrontiers, ShardListener } from './ordered-shard.js';
import { makeVersion, SEQ_MAX, seqOf, VERSION_NONE, viewOf } from './version.js';

/**
 * The ordered stream of a one-member shard: this node is the only sender and the only receiver, so every
 * payload is "received by every member" as soon as it is sequenced. What arrives during one event-loop
 * turn is sequenced and delivered as one batch on the next turn (setImmediate), with one HLC timestamp.
 *
 * Sequence space: a view holds 2^32 versions. Once the sequence passes `seqRolloverAt` (half of it by
 * default) the sequencer asks for a fresh view (`nextView`, durably reserved by the node) and continues
 * there from seq 0, so a long-running node never runs out; reads that ask the stream to skip ahead
 * (requestProgress) move it at most `skipAheadMax` past the last version handed out, so they cannot burn
 * the space either.
 *
 * Invariants: versions strictly increase (seq += 1 per payload; a new view starts above every version of
 * the old one); timestamps never decrease; persistedFrontier ≤ deliveredVersion; the stability frontier is
 * the timestamp of the oldest delivered payload not yet persisted, or the clock when everything is persisted.
 */
export interface LocalSequencerOptions {
  name: string;
  memberId: number;
  view: number;
  clock: ClockUs;
  /** Timestamps handed out continue from here (the newest timestamp in the log after a restart). */
  lastTimestampUs: number;
  /** Most payloads queued and not yet delivered. */
  windowPayloads: number;
  /** A fresh view, durably above every view this node used (the sequence rolls over into it). */
  nextView?: () => Promise<number>;
  /** Sequence number past which the next view is asked for (default 2^31). */
  seqRolloverAt?: number;
  /** Farthest requestProgress moves the sequence past the last version handed out (default 2^20). */
  skipAheadMax?: number;
  /** A rollover failed (it is tried again on the next batch). */
  onRolloverError?: (e: Error) => void;
}

const SEQ_ROLLOVER_AT_DEFAULT = 2 ** 31;
const SKIP_AHEAD_MAX_DEFAULT = 2 ** 20;

export class LocalSequencer implements OrderedShard {
  readonly name: string;
  readonly members: readonly number[];
  #view: number;
  readonly #nextView: (() => Promise<number>) | null;
  readonly #seqRolloverAt: number;
  readonly #skipAheadMax: number;
  readonly #onRolloverError: (e: Error) => void;
  #rollingOver = false;
  readonly #clock: ClockUs;
  readonly #hlc: HybridClock;
  readonly #windowPayloads: number;
  #listener: ShardListener | null = null;
  #queue: Uint8Array[] = [];
  #flushScheduled = false;
  #refused = false;
  #nextSeq = 0;
  #deliveredVersion = VERSION_NONE;
  #persistedVersion = VERSION_NONE;
  /** (last version of a delivered batch, its timestamp) for batches not yet persisted, oldest first. */
  #unpersisted: Array<{ version: number; timestampUs: number }> = [];
  #closed = false;

  constructor(options: LocalSequencerOptions) {
    assert(options.windowPayloads >= 1, 'windowPayloads must be ≥ 1');
    this.name = options.name;
    this.members = [options.memberId];
    this.#memberId = options.memberId;
    this.#view = options.view;
    this.#clock = options.clock;
    this.#hlc = new HybridClock(options.lastTimestampUs);
    this.#windowPayloads = options.windowPayloads;
    this.#nextView = options.nextView ?? null;
    this.#seqRolloverAt = options.seqRolloverAt ?? SEQ_ROLLOVER_AT_DEFAULT;
    this.#skipAheadMax = options.skipAheadMax ?? SKIP_AHEAD_MAX_DEFAULT;
    this.#onRolloverError = options.onRolloverError ?? (() => undefined);
    assert(this.#seqRolloverAt >= 1 && this.#seqRolloverAt < SEQ_MAX, 'seqRolloverAt must be in 1..SEQ_MAX-1');
    assert(this.#skipAheadMax >= 0, 'skipAheadMax must be ≥ 0');
    // Every earlier view is closed: all of its versions count as delivered and persisted.
    this.#deliveredVersion = this.#persistedVersion = makeVersion(this.#view, 0) - 1;
  }

  readonly #memberId: number;

  get frontiers(): ShardFrontiers {
    const oldest = this.#unpersisted[0];
    return {
      deliveredVersion: this.#deliveredVersion,
      persistedFrontier: this.#persistedVersion,
      stabilityFrontierUs: oldest ? oldest.timestampUs : Math.max(this.#clock(), this.#hlc.lastUs),
    };
  }

  setListener(listener: ShardListener): void {
    this.#listener = listener;
  }

  send(payload: Uint8Array): boolean {
    if (this.#closed) fail(`send on closed shard ${this.name}`);
    if (this.#queue.length >= this.#windowPayloads) {
      this.#refused = true;
      return false;
    }
    this.#queue.push(payload);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
    return true;
  }

  reportPersisted(version: number): void {
    if (version > this.#deliveredVersion) fail(`persisted ${version} beyond delivered ${this.#deliveredVersion}`);
    if (version <= this.#persistedVersion) return;
    this.#persistedVersion = version;
    while (this.#unpersisted.length > 0 && this.#unpersisted[0]!.version <= version) this.#unpersisted.shift();
    // null messages (requestProgress) carry nothing to persist: once every batch is, so is everything delivered
    if (this.#unpersisted.length === 0) this.#persistedVersion = this.#deliveredVersion;
    this.#listener?.frontiers(this.frontiers);
  }

  /** The view versions are handed out in now (it changes when the sequence rolls over). */
  get view(): number {
    return this.#view;
  }

  requestProgress(version: number): void {
    if (this.#closed || version <= this.#deliveredVersion || viewOf(version) !== this.#view) return;
    if (this.#queue.length > 0) return; // the pending flush delivers; the caller re-checks after it
    // Farther ahead than that, the read waits (bounded) like on a replicated shard: a read must not use up
    // the sequence space.
    if (seqOf(version) - this.#nextSeq >= this.#skipAheadMax || seqOf(version) >= this.#seqRolloverAt) return;
    // A null message: the sequence jumps so the next payload gets a version above `version`.
    this.#nextSeq = Math.max(this.#nextSeq, seqOf(version) + 1);
    this.#deliveredVersion = version;
    if (this.#unpersisted.length === 0) this.#persistedVersion = version;
    this.#listener?.frontiers(this.frontiers);
  }

  /** Stop sequencing; queued payloads are dropped (the process is going down). */
  close(): void {
    this.#closed = true;
    this.#queue = [];
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#closed || this.#queue.length === 0) return;
    const payloads = this.#queue;
    this.#queue = [];
    if (this.#nextSeq + payloads.length - 1 > SEQ_MAX) fail(`shard ${this.name}: sequence space of view exhausted`);
    const timestampUs = this.#hlc.tick(this.#clock());
    const batch: Delivered[] = new Array(payloads.length);
    for (let i = 0; i < payloads.length; i++) {
      const version = makeVersion(this.#view, this.#nextSeq++);
      batch[i] = { version, timestampUs, sender: this.#memberId, payload: payloads[i]! };
    }
    if (this.#nextSeq > this.#seqRolloverAt) this.#rollOver();
    const last = batch[batch.length - 1]!;
    assert(last.version > this.#deliveredVersion, 'versions must increase');
    this.#deliveredVersion = last.version;
    this.#unpersisted.push({ version: last.version, timestampUs });
    this.#listener?.deliver(batch);
    this.#listener?.frontiers(this.frontiers);
    if (this.#refused) {
      this.#refused = false;
      this.#listener?.writable();
    }
  }

  /** Continues in a fresh view once the node has reserved one (the old view's remaining space covers the wait). */
  #rollOver(): void {
    if (this.#rollingOver || !this.#nextView) return;
    this.#rollingOver = true;
    this.#nextView().then(
      (view) => {
        this.#rollingOver = false;
        if (this.#closed) return;
        assert(view > this.#view, `next view ${view} not above ${this.#view}`);
        this.#view = view;
        this.#nextSeq = 0;
        // every version of the old view counts as delivered, and as persisted once its batches are
        this.#deliveredVersion = makeVersion(view, 0) - 1;
        if (this.#unpersisted.length === 0) this.#persistedVersion = this.#deliveredVersion;
        this.#listener?.frontiers(this.frontiers);
      },
      (e: unknown) => {
        this.#rollingOver = false;
        this.#onRolloverError(e instanceof Error ? e : new Error(String(e)));
      },
    );
  }
}
