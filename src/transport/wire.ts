import { Packr, Unpackr } from 'msgpackr';
import { assert } from '../assert.js';

/**
 * Frame formats. Every frame starts with the same 8-byte header, little-endian:
 *   u8 kind | u8 flags | u16 shard (index in the view's layout, or BLOCK_CONTROL) | u32 view id
 * then a kind-specific body. The hot frames (multicast batches, shard rows, P2P) are fixed binary
 * layouts read with plain byte arithmetic (no allocation, no DataView); control-plane frames (control
 * rows, joins, views, state transfer, restart) carry one msgpack value.
 *
 * DATA  (a multicast batch):  header | u16 sender rank | u16 0 | u32 first index | u32 payload count |
 *       u32 null count | u53 timestamp µs | u32 length × payload count | payload bytes
 *       Indexes [first, first+payloads) are payloads in order, the next `null count` indexes are nulls.
 * ROW   (a member's shard row): header | the row's float64 values as raw bytes.
 * CONTROL_ROW (a member's control row): header | msgpack(ControlRow).
 * MSG   (a control message): header | msgpack(ControlMessage).
 * P2P_REQUEST: header | u53 request id | payload.   P2P_REPLY: header | u53 request id | u8 status | payload.
 *
 * u53: an integer in [-1, 2^53 - 2] stored as value + 1 in two u32 (low word first).
 */

export const FrameKind = {
  data: 1,
  row: 2,
  controlRow: 3,
  msg: 4,
  p2pRequest: 5,
  p2pReply: 6,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

export const HEADER_BYTES = 8;
export const BLOCK_CONTROL = 0xffff;
export const DATA_HEADER_BYTES = HEADER_BYTES + 24;
export const P2P_REQUEST_HEADER_BYTES = HEADER_BYTES + 8;
export const P2P_REPLY_HEADER_BYTES = HEADER_BYTES + 12;
/** Largest frame any driver must carry (u32 length prefix). */
export const FRAME_BYTES_MAX = 2 ** 32 - 1;

const TWO_32 = 2 ** 32;

export function writeU16(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
}

export function readU16(b: Uint8Array, off: number): number {
  return b[off]! | (b[off + 1]! << 8);
}

export function writeU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 16) & 0xff;
  b[off + 3] = (v >>> 24) & 0xff;
}

export function readU32(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16)) + b[off + 3]! * 0x1000000;
}

export function writeU53(b: Uint8Array, off: number, v: number): void {
  const x = v + 1;
  writeU32(b, off, x % TWO_32);
  writeU32(b, off + 4, Math.floor(x / TWO_32));
}

export function readU53(b: Uint8Array, off: number): number {
  return readU32(b, off) + readU32(b, off + 4) * TWO_32 - 1;
}

export function writeHeader(b: Uint8Array, kind: FrameKind, shard: number, view: number): void {
  b[0] = kind;
  b[1] = 0;
  writeU16(b, 2, shard);
  writeU32(b, 4, view);
}

export function frameKind(frame: Uint8Array): number {
  return frame[0]!;
}

export function frameShard(frame: Uint8Array): number {
  return readU16(frame, 2);
}

export function frameView(frame: Uint8Array): number {
  return readU32(frame, 4);
}

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** A msgpack frame (control row or control message). */
export function encodeMsgFrame(kind: FrameKind, shard: number, view: number, value: unknown): Uint8Array {
  const body = packr.pack(value);
  const frame = new Uint8Array(HEADER_BYTES + body.length);
  writeHeader(frame, kind, shard, view);
  frame.set(body, HEADER_BYTES);
  return frame;
}

export function decodeMsgFrame(frame: Uint8Array): unknown {
  assert(frame.length > HEADER_BYTES, 'empty msgpack frame');
  return unpackr.unpack(frame.subarray(HEADER_BYTES));
}
