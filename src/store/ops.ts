import { Packr, Unpackr } from 'msgpackr';
import type { PoolSpec } from '../api/types.js';

/**
 * What travels through a shard's ordered stream: one operation per payload, msgpack-encoded. Every
 * operation names its origin (node id o, local op id i) so the node that submitted it can answer its
 * caller when the operation is applied; all other members apply it the same way and answer nobody.
 * Applying is deterministic: the result depends only on the op and the shard's state at its position.
 */
export type Op =
  | PutOp
  | DeleteOp
  | BarrierOp
  | SweepOp
  | PoolCreateOp
  | PoolDeleteOp;

interface OpOrigin {
  /** Origin node id. */
  o: number;
  /** Op id, unique per origin node and process lifetime. */
  i: number;
}

export interface PutOp extends OpOrigin {
  t: 'put';
  k: string;
  v: Uint8Array;
  /** Content type. */
  c: string;
  /** If-Match version. */
  m?: number;
  /** If-None-Match: * */
  n?: 1;
  /** Request id (idempotency). */
  r?: string;
}

export interface DeleteOp extends OpOrigin {
  t: 'del';
  k: string;
  m?: number;
  r?: string;
}

/** Orders a linearizable read after every write delivered before it; changes nothing. */
export interface BarrierOp extends OpOrigin {
  t: 'bar';
}

/** Age-based retention of one pool, a bounded slice of its keys at a time. */
export interface SweepOp extends OpOrigin {
  t: 'sweep';
  /** Pool path. */
  p: string;
  /** Versions older than this (µs) are trimmed, except the one current at this time. */
  cut: number;
  /** Resume after this key ('' = from the start). */
  from: string;
  /** Keys to visit at most. */
  max: number;
}

export interface PoolCreateOp extends OpOrigin {
  t: 'pool+';
  p: string;
  s: Required<Pick<PoolSpec, 'type' | 'subgroup'>> & Pick<PoolSpec, 'affinity' | 'retain'>;
}

export interface PoolDeleteOp extends OpOrigin {
  t: 'pool-';
  p: string;
}

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export function encodeOp(op: Op): Uint8Array {
  return packr.pack(op);
}

export function decodeOp(payload: Uint8Array): Op {
  return unpackr.unpack(payload) as Op;
}
