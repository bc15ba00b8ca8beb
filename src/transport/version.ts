import { fail } from '../assert.js';

/**
 * Versions: `view * 2^32 + seq`, held in a JS number. Safe while view < 2^21 (2^21 * 2^32 = 2^53).
 * -1 (VERSION_NONE) means "no version"; versions strictly increase within a shard and have gaps.
 */
export const VERSION_NONE = -1;
export const VIEW_MAX = 2 ** 21 - 1;
export const SEQ_MAX = 2 ** 32 - 1;
const TWO_32 = 2 ** 32;

export function makeVersion(view: number, seq: number): number {
  if (!(Number.isInteger(view) && view >= 0 && view <= VIEW_MAX)) fail(`view ${view} out of range 0..${VIEW_MAX}`);
  if (!(Number.isInteger(seq) && seq >= 0 && seq <= SEQ_MAX)) fail(`seq ${seq} out of range 0..${SEQ_MAX}`);
  return view * TWO_32 + seq;
}

export function viewOf(version: number): number {
  return Math.floor(version / TWO_32);
}

export function seqOf(version: number): number {
  return version % TWO_32;
}
