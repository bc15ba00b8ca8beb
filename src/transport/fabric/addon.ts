/**
 * Loads the native fabric addon (native/, built by scripts/build-native.mjs) and types its surface.
 *
 * The addon is optional: `npm install` builds it only when libfabric's headers are present. Nothing here
 * loads it at import time; a caller that asks for the fabric transport gets the module or a
 * FabricUnavailableError that says how to build it.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Which libfabric provider carries the writes (see native/src/fabric.cc for the exact provider strings). */
export type FabricProvider = 'shm' | 'tcp' | 'net' | 'verbs';
export const FABRIC_PROVIDERS: readonly FabricProvider[] = ['shm', 'tcp', 'net', 'verbs'];

/** Options the native constructor takes: every field is required there (defaults live in config.ts). */
export interface NativeFabricOptions {
  provider: FabricProvider;
  host: string;
  shmPrefix: string;
  writeTimeoutMs: number;
  pollSpinUs: number;
  pollSleepMaxUs: number;
  livenessCheckMs: number;
  shmLockRecoveryMs: number;
  maxOutstandingWrites: number;
  maxQueuedWrites: number;
  blockSizeBytes: number;
  maxRegionBytes: number;
}

export interface NativeFabricStats {
  writesPosted: number;
  writesCompleted: number;
  writesQueued: number;
  writesCoalesced: number;
  writesDropped: number;
  bytesPosted: number;
  eagain: number;
  cqErrors: number;
  watchChanges: number;
  notifications: number;
  progressLoops: number;
  sleeps: number;
  outstanding: number;
  queued: number;
  regions: number;
  peers: number;
  reservedBytes: number;
  fdWait: boolean;
  /** shm locks left held by dead processes that the watchdog released. */
  shmLocksReleased: number;
  /** shm: this endpoint's own lock was found where the known layout puts it, so it can be recovered. */
  shmLockRecovery: boolean;
}

/** Result of write(): posted to the provider, queued behind earlier writes, or dropped (peer known dead). */
export const WRITE_POSTED = 0;
export const WRITE_QUEUED = 1;
export const WRITE_PEER_DEAD = 2;
export type WriteStatus = typeof WRITE_POSTED | typeof WRITE_QUEUED | typeof WRITE_PEER_DEAD;

/** Called on the JS thread: watches whose word changed, and peers found dead ([peer, reason, generation]). */
export type NativeEventHandler = (changedWatchIds: Uint32Array, peerFailures: Array<[number, string, number]> | null) => void;

export interface NativeFabric {
  readonly provider: string;
  readonly shmName: string;
  endpointBlob(): Buffer;
  register(regionId: number, sizeBytes: number): ArrayBuffer;
  regionBlob(regionId: number): Buffer;
  retireRegion(regionId: number): void;
  /** Returns the peer's generation (1 for the first add of this id, +1 per re-add). */
  addPeer(peer: number, blob: Uint8Array): number;
  addRemoteRegion(peer: number, blob: Uint8Array): void;
  removePeer(peer: number): void;
  write(peer: number, remoteRegion: number, remoteOffset: number, localRegion: number, localOffset: number, length: number): WriteStatus;
  put(regionId: number, offset: number, length: number, peers: Uint32Array): number;
  watch(regionId: number, offset: number): number;
  unwatch(watchId: number): void;
  stats(): NativeFabricStats;
  queuedTo(peer: number): number;
  /** Tests only: takes and keeps the shm lock of this endpoint (no peer) or of the peer's, as a process killed inside the provider would. */
  holdShmLockForTest(peer?: number): void;
  close(): void;
}

export interface NativeFabricModule {
  Fabric: new (options: NativeFabricOptions, onEvents: NativeEventHandler) => NativeFabric;
  info(): { version: string; providers: Array<{ provider: string; fabric: string; domain: string; mrMode: number; injectSize: number }> };
  cleanupStaleShm(prefix: string, dir?: string): string[];
  processIdentity(): { pid: number; startTicks: number };
}

/** The region id inside a regionBlob() (layout in native/src/fabric.cc: magic u32, version u16, provider u16, id u32). */
export function regionIdOfBlob(blob: Uint8Array): number {
  if (blob.length < 12) throw new TypeError('truncated region blob');
  return new DataView(blob.buffer, blob.byteOffset, blob.byteLength).getUint32(8, true);
}

export const BUILD_HINT = 'install libfabric-dev (apt-get install -y libfabric-dev) and run npm run build:native';

/** The fabric transport was asked for but the addon is not there (or cannot load). */
export class FabricUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FabricUnavailableError';
  }
}

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'native', 'binding.gyp'))) return dir;
    dir = dirname(dir);
  }
  throw new FabricUnavailableError('cannot find the package root (native/binding.gyp) above ' + fileURLToPath(import.meta.url));
}

/** Where the built addon lives. */
export function addonPath(): string {
  return join(packageRoot(), 'native', 'build', 'Release', 'squall_fabric.node');
}

let loaded: NativeFabricModule | undefined;

/** The addon (from `path`, default: the build output), or a FabricUnavailableError saying why not and how to fix it. */
export function loadFabricAddon(path = addonPath()): NativeFabricModule {
  if (loaded && path === addonPath()) return loaded;
  if (!existsSync(path)) {
    throw new FabricUnavailableError(`native fabric addon not built (${path} missing): ${BUILD_HINT}`);
  }
  // libfabric links the PSM libraries, and libinfinipath's load-time constructor installs signal handlers
  // that write "<host>.<pid>,vm.btr" backtrace files into the working directory when the process gets a
  // fatal signal: this variable keeps them out of users' directories (and node's own handling in place).
  process.env.IPATH_NO_BACKTRACE ??= '1';
  try {
    const module = createRequire(import.meta.url)(path) as NativeFabricModule;
    if (path === addonPath()) loaded = module;
    return module;
  } catch (e) {
    throw new FabricUnavailableError(
      `native fabric addon at ${path} failed to load (${(e as Error).message}); is libfabric1 installed? ${BUILD_HINT}`,
    );
  }
}

/** True when loadFabricAddon() would succeed. */
export function fabricAddonAvailable(): boolean {
  try {
    loadFabricAddon();
    return true;
  } catch {
    return false;
  }
}
