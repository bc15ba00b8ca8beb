/** Messages between the fabric test harness (parent) and its member processes, and shared test data. */
import type { FabricConfigInput } from '../../src/transport/fabric/config.js';

export const TABLE_REGION = 1;
/** The ring of the sender of rank r. */
export const ringRegion = (rank: number): number => 100 + rank;

/** Message sizes: a fixed cycle, or pseudo-random in 0..randomMax. */
export type Sizes = { list: number[] } | { randomMax: number };

export type Scenario =
  | { kind: 'rows'; payloadBytes: number; updates: number }
  | {
      kind: 'ring';
      senders: number[];
      count: number;
      capacityBytes: number;
      sizes: Sizes;
      /** Send a `received` progress note after this many messages from a sender. */
      reportAfter?: number;
      /** The test kills this rank: nobody expects all its messages. */
      killRank?: number;
      /** Do not report a result before this peer was reported failed. */
      expectFailure?: number;
    }
  | {
      /**
       * Senders stream messages to everyone until `victim` is reported failed; every member also updates
       * its table row every heartbeatMs (the failure detector's heartbeat). The victim says `received`
       * after reportAfter messages (or at once if there are no senders).
       */
      kind: 'stream';
      senders: number[];
      victim: number;
      payloadBytes: number;
      capacityBytes: number;
      reportAfter: number;
      heartbeatMs: number;
    }
  | { kind: 'idle' };

export interface Hello {
  rank: number;
  endpoint: string;
  regions: Record<number, string>;
  shmName: string;
}

export type ToMember =
  | { op: 'start'; rank: number; n: number; config: FabricConfigInput; scenario: Scenario }
  | { op: 'peers'; hellos: Hello[] }
  /** close: false exits without closing the endpoint (the addon's exit hook must clean up). */
  | { op: 'exit'; close?: boolean };

export type FromMember =
  | { op: 'hello'; hello: Hello }
  | { op: 'progress'; rank: number; note: string; value: number; reason?: string }
  | { op: 'result'; rank: number; result: Record<string, unknown> };

function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

export function messageSize(sender: number, seq: number, sizes: Sizes): number {
  if ('list' in sizes) return sizes.list[(seq - 1) % sizes.list.length]!;
  return mix(sender * 1_000_003 + seq) % (sizes.randomMax + 1);
}

/** The deterministic payload of message `seq` of `sender`: every receiver can check it byte for byte. */
export function messageBytes(sender: number, seq: number, sizes: Sizes): Buffer {
  const size = messageSize(sender, seq, sizes);
  const words = new Uint32Array(Math.ceil(size / 4));
  let x = mix(sender * 7919 + seq * 104_729 + 1);
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return Buffer.from(words.buffer, 0, size);
}
