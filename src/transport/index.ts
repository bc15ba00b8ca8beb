export { wallClockUs, type ClockUs } from './clock.js';
export { groupConfigSchema, parseGroupConfig, type GroupConfig, type GroupConfigInput, type SubgroupConfig } from './config.js';
export type { DriverListener, MemberAddress, TransportDriver } from './driver.js';
export { nodeEventLoop, type Cancel, type EventLoop } from './event-loop.js';
export { GroupCore, type CoreOutput, type GroupCoreOptions, type P2PResult, type StartMode, type StorageRequest, type ViewEvent } from './group.js';
export { HybridClock } from './hlc.js';
export { computeLayout, shardNames, type ShardLayout } from './layout.js';
export { LocalSequencer, type LocalSequencerOptions } from './local-sequencer.js';
export { GroupMember, type GroupMemberOptions, type MemberEvents, type P2PHandler } from './member.js';
export type { Delivered, OrderedShard, ShardFrontiers, ShardListener, ShardViewInfo } from './ordered-shard.js';
export { ReplicatedShard } from './replicated-shard.js';
export {
  MemoryTransportStorage,
  type RaggedTrimRecord,
  type RestartState,
  type ShardLogEnd,
  memoryLogChunk,
  type StateChunk,
  type StateTransfer,
  type StateTransferHooks,
  type TransportStorage,
} from './storage.js';
export { TcpDriver, type TcpDriverOptions } from './tcp-driver.js';
export { makeVersion, seqOf, VERSION_NONE, VIEW_MAX, SEQ_MAX, viewOf } from './version.js';
export { initialView, nextView, type MemberInfo, type MembershipChange, type View } from './view.js';
