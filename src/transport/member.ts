import { randomInt } from 'node:crypto';
import { SquallError } from '../api/errors.js';
import { createLogger, type Logger } from '../log.js';
import type { GroupConfig } from './config.js';
import type { DriverListener, MemberAddress, TransportDriver } from './driver.js';
import { nodeEventLoop, type Cancel, type EventLoop } from './event-loop.js';
import { GroupCore, type CoreOutput, type P2PResult, type ProducedState, type StartMode, type ViewEvent } from './group.js';
import { shardNames } from './layout.js';
import type { MulticastTrace } from './ordered-multicast.js';
import type { Delivered, ShardFrontiers } from './ordered-shard.js';
import { ReplicatedShard } from './replicated-shard.js';
import type { StateTransferHooks, TransportStorage } from './storage.js';
import type { View } from './view.js';

/**
 * One member process of a group: binds the pure GroupCore to a driver (I/O), a TransportStorage (views
 * and trims), the store's state-transfer hooks and an event loop (clock, per-turn flush, ticks). Thin on
 * purpose: every protocol decision is in the core; this file only moves inputs in and outputs out.
 *
 * Per turn: driver events and app calls feed the core; one deferred flush per turn lets the core send
 * everything queued in that turn as one batch per shard and push each changed row once.
 */

export type P2PHandler = (from: number, payload: Uint8Array) => Promise<Uint8Array> | Uint8Array;

export interface MemberEvents {
  /** A view was installed (this member is in it). */
  view?(event: ViewEvent): void;
  /** This member left the group (removed, or stopped in a minority); it rejoins if rejoin is 'auto'. */
  stopped?(kind: 'left' | 'minority', reason: string): void;
  /** A fatal error (storage failed): the member stopped. */
  fatal?(error: Error): void;
}

export interface GroupMemberOptions {
  readonly config: GroupConfig;
  readonly selfId: number;
  /** Where this member listens (default: its entry in config.members). */
  readonly address?: MemberAddress;
  /** Identifies this process (default: random). */
  readonly incarnation?: number;
  readonly driver: TransportDriver;
  readonly storage: TransportStorage;
  readonly stateTransfer: StateTransferHooks;
  readonly loop?: EventLoop;
  readonly log?: Logger;
  /** 'form': an initial member forming view 0; 'join': ask the group to admit this member; 'auto' (default):
   *  join if storage holds a saved view or this is not an initial member, else form. */
  readonly startMode?: StartMode | 'auto';
  /** After being removed or stopping in a minority, join again ('auto', default) or stay out. */
  readonly rejoin?: 'auto' | 'never';
  readonly events?: MemberEvents;
  /** Optional protocol trace (simulation checker). */
  readonly trace?: MulticastTrace;
}

export class GroupMember {
  readonly selfId: number;
  readonly #o: GroupMemberOptions;
  readonly #loop: EventLoop;
  readonly #log: Logger;
  #core: GroupCore | null = null;
  readonly #shards: ReplicatedShard[];
  readonly #byName = new Map<string, ReplicatedShard>();
  #flushScheduled = false;
  #ticker: Cancel | null = null;
  #rejoinTimer: Cancel | null = null;
  #closed = false;
  #handler: P2PHandler | null = null;
  readonly #waiting = new Map<number, { resolve: (p: Uint8Array) => void; reject: (e: Error) => void }>();

  constructor(o: GroupMemberOptions) {
    this.#o = o;
    this.selfId = o.selfId;
    this.#loop = o.loop ?? nodeEventLoop;
    this.#log = (o.log ?? createLogger()).child({ node: o.selfId });
    const port = {
      send: (k: number, payload: Uint8Array) => {
        const ok = this.#needCore().send(k, payload);
        this.#schedule();
        return ok;
      },
      reportPersisted: (k: number, version: number) => {
        // A store's persistence may complete after the member closed: nothing to report to then.
        if (this.#closed || !this.#core) return;
        this.#core.reportPersisted(k, version);
        this.#schedule();
      },
    };
    this.#shards = shardNames(o.config.layout.subgroups).map((name, k) => new ReplicatedShard(name, k, port));
    for (const s of this.#shards) this.#byName.set(s.name, s);
  }

  /** Load the restart state, start the driver, start the protocol. */
  async start(): Promise<void> {
    const o = this.#o;
    const restart = await o.storage.loadRestartState();
    const address = o.address ?? o.config.members.find((m) => m.id === o.selfId);
    if (!address) throw new SquallError('bad_parameter', `member ${o.selfId} has no address (not in config.members)`);
    const core = new GroupCore({
      config: o.config,
      self: address,
      incarnation: o.incarnation ?? randomInt(1, 2 ** 31),
      restart,
      out: this.#output(),
      log: this.#log,
      trace: o.trace,
    });
    this.#core = core;
    const listener: DriverListener = {
      frame: (from, frame) => this.#input(() => core.onFrame(from, frame)),
      linkUp: (peer, incarnation) => this.#input(() => core.onLinkUp(peer, incarnation)),
      linkDown: (peer) => this.#input(() => core.onLinkDown(peer)),
    };
    await o.driver.start(listener);
    const isInitial = o.config.members.some((m) => m.id === o.selfId);
    const mode: StartMode = o.startMode && o.startMode !== 'auto' ? o.startMode : restart || !isInitial ? 'join' : 'form';
    // Ticks at half the heartbeat period: heartbeats and failure checks are at most half a period late.
    const tickMs = Math.max(1, Math.floor(o.config.heartbeatPeriodMs / 2));
    this.#ticker = this.#loop.every(tickMs, () => this.#input(() => core.onTick(this.#loop.nowUs())));
    this.#input(() => {
      core.start(mode, this.#loop.nowUs());
      core.onTick(this.#loop.nowUs());
    });
  }

  /**
   * Feed one input to the core and schedule the end-of-turn flush. An exception out of the core is a
   * broken invariant: the member stops (crash-stop) instead of running on in an unknown state.
   */
  #input(fn: () => void): void {
    if (this.#closed) return;
    try {
      fn();
    } catch (e) {
      this.#fatal(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    this.#schedule();
  }

  get view(): View | null {
    return this.#core?.view ?? null;
  }

  /** A snapshot of the protocol state for diagnostics. */
  describe(): Record<string, unknown> {
    return this.#core?.describe() ?? { mode: 'idle' };
  }

  get mode(): string {
    return this.#core?.mode ?? 'idle';
  }

  /** Every shard of the configuration (active or not at this member). */
  get shards(): readonly ReplicatedShard[] {
    return this.#shards;
  }

  shard(name: string): ReplicatedShard {
    const s = this.#byName.get(name);
    if (!s) throw new SquallError('bad_parameter', `no shard named ${name}`, { shard: name });
    return s;
  }

  /** Send a P2P request to member `to`; rejects with SquallError when it times out or `to` leaves the view. */
  request(to: number, payload: Uint8Array, timeoutMs = this.#o.config.p2pTimeoutMs): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      try {
        const id = this.#needCore().request(to, payload, timeoutMs);
        this.#waiting.set(id, { resolve, reject });
        this.#schedule();
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  /** Serve P2P requests from other members. */
  onRequest(handler: P2PHandler): void {
    this.#handler = handler;
  }

  /**
   * Stops this member after a fatal error outside the group layer (its storage failed): as a crash, so the
   * others suspect it and install a view without it; events.fatal reports it.
   */
  crash(error: Error): void {
    this.#fatal(error);
  }

  /** Leave the group on purpose (the others install a view without this member). */
  leave(): void {
    this.#core?.leave();
    this.#schedule();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#ticker?.cancel();
    this.#rejoinTimer?.cancel();
    for (const w of this.#waiting.values()) w.reject(new SquallError('unavailable', 'member closed'));
    this.#waiting.clear();
    await this.#o.driver.close();
  }

  // ------------------------------------------------------------------ internals

  #needCore(): GroupCore {
    if (!this.#core || this.#closed) throw new SquallError('unavailable', 'group member not started or closed');
    return this.#core;
  }

  #schedule(): void {
    if (this.#flushScheduled || this.#closed) return;
    this.#flushScheduled = true;
    this.#loop.defer(() => {
      this.#flushScheduled = false;
      if (this.#closed || !this.#core) return;
      try {
        this.#core.flush(this.#loop.nowUs());
      } catch (e) {
        return this.#fatal(e instanceof Error ? e : new Error(String(e)));
      }
      this.#o.driver.flush();
    });
  }

  #fatal(error: Error): void {
    if (this.#closed) return;
    this.#log.error({ err: error.message, stack: error.stack }, 'fatal transport error: stopping this member');
    void this.close();
    this.#o.events?.fatal?.(error);
  }

  #output(): CoreOutput {
    const o = this.#o;
    return {
      push: (to, parts) => o.driver.push(to, parts),
      deliver: (k: number, batch: readonly Delivered[]) => this.#shards[k]!.deliver(batch),
      frontiers: (k: number, f: ShardFrontiers) => this.#shards[k]!.setFrontiers(f),
      writable: (k: number) => this.#shards[k]!.writable(),
      setPeers: (peers) => o.driver.setPeers(peers),
      viewInstalled: (event) => {
        for (const s of this.#shards) {
          const layout = event.view.shards[s.index]!;
          const ordered = event.myShards.includes(s.index);
          const active = ordered && this.#core!.shardReady(s.index);
          if (layout.members.includes(this.selfId) || s.active) {
            const awaitingState = ordered && !active;
            s.setView({
              view: event.view.vid,
              members: layout.members,
              active,
              awaitingState,
              ...(awaitingState ? { awaitingFrom: this.#core!.awaitingFrom(s.index) } : {}),
            });
          }
        }
        o.events?.view?.(event);
      },
      shardReady: (k) => {
        const core = this.#core!;
        const f = core.frontiersOf(k);
        const s = this.#shards[k]!;
        if (f) s.setFrontiers(f);
        if (core.shardReady(k)) s.setView({ view: s.view, members: s.members, active: true });
      },
      shardLeft: (k, undelivered) => {
        const s = this.#shards[k]!;
        s.setView({ view: s.view, members: s.members, active: false });
        s.drop(undelivered);
      },
      storage: (token, request) => {
        const done = request.kind === 'saveView' ? o.storage.saveView(request.view) : o.storage.logRaggedTrim(request.record);
        done.then(
          () => this.#input(() => this.#core!.storageDone(token)),
          (e: unknown) => this.#fatal(e instanceof Error ? e : new Error(String(e))),
        );
      },
      produceState: (token, req) => {
        const hooks = o.stateTransfer;
        (async (): Promise<ProducedState> => {
          const { name, fromVersion, toVersion, continuation: cont, chunkBytes } = req;
          if (cont !== null) {
            const chunk =
              cont.kind === 'tail'
                ? await hooks.logTail(name, fromVersion, toVersion, cont.cursor, chunkBytes)
                : await hooks.stateAt(name, toVersion, cont.cursor, chunkBytes);
            if (!chunk) throw new Error(`this member can no longer produce the tail of ${name} after ${fromVersion}`);
            return { kind: cont.kind, ...chunk };
          }
          if (fromVersion >= 0) {
            const tail = await hooks.logTail(name, fromVersion, toVersion, null, chunkBytes);
            if (tail) return { kind: 'tail', ...tail };
          }
          return { kind: 'state', ...(await hooks.stateAt(name, toVersion, null, chunkBytes)) };
        })().then(
          (r) => this.#input(() => this.#core!.stateProduced(token, r)),
          (e: unknown) => this.#input(() => this.#core!.stateProduced(token, { error: String(e) })),
        );
      },
      installState: (token, name, k, transfer) => {
        o.stateTransfer.install(name, transfer).then(
          () => this.#input(() => this.#core!.stateInstalled(token, true)),
          (e: unknown) => this.#input(() => this.#core!.stateInstalled(token, false, String(e))),
        );
      },
      p2pRequest: (from, id, payload) => {
        const handler = this.#handler;
        if (!handler) {
          this.#core!.reply(from, id, { ok: false, message: 'no P2P handler on this member' });
          return;
        }
        Promise.resolve()
          .then(() => handler(from, payload))
          .then(
            (reply) => this.#input(() => this.#core!.reply(from, id, { ok: true, payload: reply })),
            (e: unknown) =>
              this.#input(() => this.#core!.reply(from, id, { ok: false, message: e instanceof Error ? e.message : String(e) })),
          );
      },
      p2pResult: (id, result: P2PResult) => {
        const w = this.#waiting.get(id);
        if (!w) return;
        this.#waiting.delete(id);
        if (result.ok) w.resolve(result.payload);
        else w.reject(result.error);
      },
      stopped: (kind, reason) => {
        o.events?.stopped?.(kind, reason);
        if ((o.rejoin ?? 'auto') === 'auto' && !this.#closed) {
          this.#rejoinTimer = this.#loop.after(o.config.joinRetryMs, () => this.#input(() => this.#core!.rejoin()));
        }
      },
    };
  }
}
