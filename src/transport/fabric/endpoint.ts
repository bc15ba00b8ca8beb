/**
 * One process's fabric endpoint: the native addon behind a typed surface, with per-watch handlers and peer
 * failure reports dispatched on the JS thread.
 *
 * How it is used: register regions (they come back as ArrayBuffers over registered memory), hand
 * endpointBlob() and regionBlob(id) to the peers over the group's own channel (the TCP connection), add the
 * peers' blobs, then write/put ranges and watch words. Remote writes land in the local ArrayBuffers with no
 * copy; the native progress thread notices changed watched words and calls the handlers.
 */
import type { Logger } from '../../log.js';
import {
  loadFabricAddon,
  type NativeFabric,
  type NativeFabricStats,
  type WriteStatus,
} from './addon.js';
import type { FabricConfig } from './config.js';

/** `generation`: the addPeer() of that id the failure concerns (see addPeer). */
export type PeerFailureHandler = (peer: number, reason: string, generation: number) => void;

export class FabricEndpoint {
  readonly config: FabricConfig;
  private readonly native: NativeFabric;
  private readonly watches = new Map<number, { regionId: number; handler: () => void }>();
  private readonly failureHandlers: PeerFailureHandler[] = [];
  private readonly failed = new Map<number, string>();
  private readonly log: Logger | undefined;
  private closed = false;

  private constructor(config: FabricConfig, log: Logger | undefined) {
    this.config = config;
    this.log = log;
    const addon = loadFabricAddon();
    this.native = new addon.Fabric(config, (changed, failures) => this.dispatch(changed, failures));
  }

  /** Opens an endpoint (throws FabricUnavailableError if the addon is not built). */
  static open(config: FabricConfig, log?: Logger): FabricEndpoint {
    return new FabricEndpoint(config, log);
  }

  /** The libfabric provider actually in use (e.g. "tcp;ofi_rxm"). */
  get provider(): string {
    return this.native.provider;
  }

  /** The shm endpoint name ("" for other providers). */
  get shmName(): string {
    return this.native.shmName;
  }

  endpointBlob(): Uint8Array {
    return this.native.endpointBlob();
  }

  /** Registered memory under a group-agreed id; peers write into it once they have regionBlob(id). */
  registerRegion(regionId: number, sizeBytes: number): ArrayBuffer {
    return this.native.register(regionId, sizeBytes);
  }

  regionBlob(regionId: number): Uint8Array {
    return this.native.regionBlob(regionId);
  }

  /**
   * Stops using a region: its ArrayBuffer is detached (views read as empty), its watches end, and its
   * registration is closed once no local write still reads from it. Call it only when no peer will write
   * into it any more (after the view that used it ended); its address range stays reserved regardless.
   */
  retireRegion(regionId: number): void {
    for (const [id, w] of this.watches) if (w.regionId === regionId) this.watches.delete(id);
    this.native.retireRegion(regionId);
  }

  /**
   * Adds (or re-adds, after removePeer or its failure) a peer. Returns its generation: 1 for the first add
   * of this id, one more for each re-add, so a failure report about an earlier incarnation can be told apart.
   */
  addPeer(peer: number, endpointBlob: Uint8Array): number {
    const generation = this.native.addPeer(peer, endpointBlob);
    this.failed.delete(peer);
    return generation;
  }

  addRemoteRegion(peer: number, regionBlob: Uint8Array): void {
    this.native.addRemoteRegion(peer, regionBlob);
  }

  removePeer(peer: number): void {
    this.native.removePeer(peer);
  }

  /** One-sided write of a local range into a peer's region (any offsets). */
  write(peer: number, remoteRegion: number, remoteOffset: number, localRegion: number, localOffset: number, length: number): WriteStatus {
    return this.native.write(peer, remoteRegion, remoteOffset, localRegion, localOffset, length);
  }

  /**
   * The replicated-row write: local [offset, offset+length) of `regionId` into the same range of every listed
   * peer's copy of `regionId`. Returns how many of them were already known dead (skipped).
   */
  put(regionId: number, offset: number, length: number, peers: Uint32Array): number {
    return this.native.put(regionId, offset, length, peers);
  }

  /**
   * Calls `handler` on the JS thread once soon after this call (the word may have changed before anyone
   * looked), then whenever the 8-byte word at region+offset changes. Returns a watch id.
   */
  watch(regionId: number, offset: number, handler: () => void): number {
    const id = this.native.watch(regionId, offset);
    this.watches.set(id, { regionId, handler });
    return id;
  }

  unwatch(watchId: number): void {
    this.native.unwatch(watchId);
    this.watches.delete(watchId);
  }

  /** Called once per failed peer (a write failed or timed out, or a co-located peer's process exited). */
  onPeerFailed(handler: PeerFailureHandler): void {
    this.failureHandlers.push(handler);
  }

  /** Peers reported dead (and not re-added since), with the reason. */
  failedPeers(): ReadonlyMap<number, string> {
    return this.failed;
  }

  queuedTo(peer: number): number {
    return this.native.queuedTo(peer);
  }

  /** Tests only: see NativeFabric.holdShmLockForTest. */
  holdShmLockForTest(peer?: number): void {
    this.native.holdShmLockForTest(peer);
  }

  stats(): NativeFabricStats {
    return this.native.stats();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.close();
    this.watches.clear();
  }

  private dispatch(changed: Uint32Array, failures: Array<[number, string, number]> | null): void {
    if (this.closed) return;
    if (failures) {
      for (const [peer, reason, generation] of failures) {
        this.failed.set(peer, reason);
        this.log?.warn({ peer, reason, generation, provider: this.provider }, 'fabric peer failed');
        for (const h of this.failureHandlers) h(peer, reason, generation);
      }
    }
    for (const id of changed) this.watches.get(id)?.handler();
  }
}
