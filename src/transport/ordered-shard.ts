/**
 * The contract between a shard's ordered multicast (src/transport) and the store that applies what it
 * delivers (src/store). The one-member sequencer (local-sequencer.ts) implements it for a single node;
 * the Derecho-style multicast implements the same interface for replicated shards.
 *
 * Guarantees an implementation keeps:
 * - every member of the shard delivers the same payloads in the same order (total order);
 * - versions strictly increase along the delivery order (view * 2^32 + seq, see version.ts);
 * - timestamps (µs, HLC) never decrease along the delivery order;
 * - a payload is delivered only once every member of the shard has received it;
 * - persistedFrontier is the minimum over members of what each reported through reportPersisted();
 * - stabilityFrontierUs is a time such that no message with a timestamp ≤ it can still be delivered
 *   that is not yet persisted on every member (it advances with heartbeats even with no traffic).
 */

/** One payload in the shard's total order. */
export interface Delivered {
  readonly version: number;
  readonly timestampUs: number;
  /** Member id of the sender. */
  readonly sender: number;
  readonly payload: Uint8Array;
}

/** The frontiers of a shard, as seen by this member. Versions are -1 while nothing qualifies. */
export interface ShardFrontiers {
  /** Highest version delivered here (payload or null message). */
  readonly deliveredVersion: number;
  /** Minimum over the shard's members of the persisted version. */
  readonly persistedFrontier: number;
  /** Time (µs) below which the shard's history is complete and persisted on every member. */
  readonly stabilityFrontierUs: number;
}

/** What the layer above supplies to a shard. Called synchronously by the transport, in order. */
export interface ShardListener {
  /** A batch of payloads in total order; apply them before returning (persistence may finish later). */
  deliver(batch: readonly Delivered[]): void;
  /** Any frontier moved. */
  frontiers(frontiers: ShardFrontiers): void;
  /** send() would accept a payload again after having refused one. */
  writable(): void;
  /**
   * (Extension, replicated shards only; optional.) The shard's membership changed: a view was installed
   * that includes this shard, or this member stopped ordering it (active = false: removed from the view,
   * moved to another shard, shard under-provisioned, or the member left the group).
   */
  viewChanged?(info: ShardViewInfo): void;
  /**
   * (Extension, replicated shards only; optional.) Payloads accepted by send() that will never be
   * delivered, because this member stopped ordering the shard before they were. Payloads still pending
   * across an ordinary view change are not dropped: they are re-sent in the next view with new versions.
   */
  dropped?(payloads: readonly Uint8Array[]): void;
}

/** (Extension) A shard's membership in one view, as seen by this member. */
export interface ShardViewInfo {
  /** The view id (versions delivered in it are view * 2^32 + seq). */
  readonly view: number;
  /** Member ids of the shard in that view, in sender-rank order. */
  readonly members: readonly number[];
  /** Whether this member orders the shard now (a joiner becomes active once its state transfer is done). */
  readonly active: boolean;
  /**
   * This member is in the shard but waits for its state transfer: its local copy is incomplete (the
   * persist layer records that durably, see ShardLogEnd.complete; active = true means complete again).
   */
  readonly awaitingState?: boolean;
  /** With awaitingState: the members it asks for the state (persist it with the incomplete flag). */
  readonly awaitingFrom?: readonly number[];
}

export interface OrderedShard {
  /** e.g. "persistent/0/1": type / subgroup / shard. */
  readonly name: string;
  /** Member ids of the shard in the current view. */
  readonly members: readonly number[];
  readonly frontiers: ShardFrontiers;
  setListener(listener: ShardListener): void;
  /**
   * Queue a payload for the total order. Returns false (and queues nothing) when this sender's window of
   * undelivered payloads is full; the listener's writable() fires when space frees up.
   */
  send(payload: Uint8Array): boolean;
  /** The layer above has durably stored every delivered payload up to `version` (inclusive). */
  reportPersisted(version: number): void;
  /**
   * (Optional) Asks the stream to make deliveredVersion reach `version` even if nobody sends (the sequence
   * skips forward like a null message), so a read "as of version v" on an idle shard can be answered. The
   * one-member sequencer can; the round-robin multicast cannot jump its sequence, so there a read above
   * the delivered version waits (bounded) for traffic. A version of a later view is ignored.
   */
  requestProgress?(version: number): void;
}
