import { Packr, Unpackr } from 'msgpackr';
import type { PoolSpec } from '../api/types.js';
import { assert, fail } from '../assert.js';

/**
 * What travels through a shard's ordered stream: one operation per payload. Every operation names its
 * origin (node id o, local op id i) so the node that submitted it can answer its caller when the operation
 * is applied; all other members apply it the same way and answer nobody. Applying is deterministic: the
 * result depends only on the op and the shard's state at its position.
 *
 * Encoding: puts and deletes (the hot path) have a fixed binary layout; everything else is msgpack.
 *   byte 0: kind (1 put, 2 delete, 3 msgpack)
 *   put/delete: u16 o, f64 i, u8 flags (1: m, 2: n, 4: r), [f64 m], [u16 len + r utf8],
 *               u16 len + key utf8, put only: u16 len + content type latin1, value bytes to the end
 */
export type Op = PutOp | DeleteOp | BarrierOp | SweepOp | PoolCreateOp | PoolDeleteOp;

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
  /** Squall-Request-Id: a retry of the delete that removed the pool answers with that pool. */
  r?: string;
}

const KIND_PUT = 1;
const KIND_DELETE = 2;
const KIND_MSGPACK = 3;
const FLAG_M = 1;
const FLAG_N = 2;
const FLAG_R = 4;
const U16_MAX = 0xffff;

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export function encodeOp(op: Op): Uint8Array {
  if (op.t !== 'put' && op.t !== 'del') {
    const body = packr.pack(op);
    const out = Buffer.allocUnsafe(1 + body.length);
    out[0] = KIND_MSGPACK;
    out.set(body, 1);
    return out;
  }
  const keyLen = Buffer.byteLength(op.k);
  const ridLen = op.r === undefined ? 0 : Buffer.byteLength(op.r);
  const ctLen = op.t === 'put' ? Buffer.byteLength(op.c, 'latin1') : 0;
  if (keyLen > U16_MAX || ridLen > U16_MAX || ctLen > U16_MAX) assert(false, 'key, request id or content type longer than 65535 bytes');
  const valueLen = op.t === 'put' ? op.v.byteLength : 0;
  const size = 1 + 2 + 8 + 1 + (op.m !== undefined ? 8 : 0) + (op.r !== undefined ? 2 + ridLen : 0) + 2 + keyLen + (op.t === 'put' ? 2 + ctLen + valueLen : 0);
  const out = Buffer.allocUnsafe(size);
  let p = 0;
  out[p++] = op.t === 'put' ? KIND_PUT : KIND_DELETE;
  out.writeUInt16LE(op.o, p);
  p += 2;
  out.writeDoubleLE(op.i, p);
  p += 8;
  out[p++] = (op.m !== undefined ? FLAG_M : 0) | (op.t === 'put' && op.n !== undefined ? FLAG_N : 0) | (op.r !== undefined ? FLAG_R : 0);
  if (op.m !== undefined) {
    out.writeDoubleLE(op.m, p);
    p += 8;
  }
  if (op.r !== undefined) {
    out.writeUInt16LE(ridLen, p);
    p += 2;
    p += out.write(op.r, p, ridLen, 'utf8');
  }
  out.writeUInt16LE(keyLen, p);
  p += 2;
  p += out.write(op.k, p, keyLen, 'utf8');
  if (op.t === 'put') {
    out.writeUInt16LE(ctLen, p);
    p += 2;
    p += out.write(op.c, p, ctLen, 'latin1');
    out.set(op.v, p);
    p += valueLen;
  }
  if (p !== size) fail(`op encoding wrote ${p} of ${size} bytes`);
  return out;
}

/** Decodes a payload; a put's value is a view into `payload` (not copied). */
export function decodeOp(payload: Uint8Array): Op {
  const b = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  const kind = b[0];
  if (kind === KIND_MSGPACK) return unpackr.unpack(b.subarray(1)) as Op;
  if (kind !== KIND_PUT && kind !== KIND_DELETE) fail(`unknown op kind ${kind}`);
  let p = 1;
  const o = b.readUInt16LE(p);
  p += 2;
  const i = b.readDoubleLE(p);
  p += 8;
  const flags = b[p++]!;
  let m: number | undefined;
  let r: string | undefined;
  if (flags & FLAG_M) {
    m = b.readDoubleLE(p);
    p += 8;
  }
  if (flags & FLAG_R) {
    const len = b.readUInt16LE(p);
    p += 2;
    r = b.toString('utf8', p, p + len);
    p += len;
  }
  const keyLen = b.readUInt16LE(p);
  p += 2;
  const k = b.toString('utf8', p, p + keyLen);
  p += keyLen;
  if (kind === KIND_DELETE) {
    const op: DeleteOp = { t: 'del', o, i, k };
    if (m !== undefined) op.m = m;
    if (r !== undefined) op.r = r;
    return op;
  }
  const ctLen = b.readUInt16LE(p);
  p += 2;
  const c = b.toString('latin1', p, p + ctLen);
  p += ctLen;
  const op: PutOp = { t: 'put', o, i, k, c, v: b.subarray(p) };
  if (m !== undefined) op.m = m;
  if (flags & FLAG_N) op.n = 1;
  if (r !== undefined) op.r = r;
  return op;
}
