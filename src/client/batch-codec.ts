import { Packr, Unpackr } from 'msgpackr';
import { SquallError, type BatchOp, type BatchResult } from '../api/index.js';
import type { TimeArg } from './time-arg.js';

/**
 * Bodies of POST /v1/batch in both encodings of API.md. In msgpack a value travels as bytes (bin); in JSON
 * as base64. Whatever the encoding, the caller gives values as bytes or UTF-8 text and gets values back as
 * Buffers.
 */

export type BatchEncoding = 'msgpack' | 'json';

export const BATCH_CONTENT_TYPE: Record<BatchEncoding, string> = {
  msgpack: 'application/msgpack',
  json: 'application/json',
};

type GetOp = Extract<BatchOp, { op: 'get' }>;

/** One operation of a batch as the client takes it: a string value is UTF-8 text, `at` any TimeArg. */
export type BatchOpInput = Exclude<BatchOp, GetOp> | (Omit<GetOp, 'at'> & { at?: TimeArg });

/** One result of a batch, in the order of the ops: status, and the single call's fields or an error. */
export type BatchOpResult = Omit<BatchResult, 'value'> & { value?: Buffer };

// Plain msgpack maps both ways (records would need shared structures on the server).
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false });

function needsRewrite(op: BatchOpInput, encoding: BatchEncoding): boolean {
  if (op.op === 'put') return encoding === 'json' || typeof op.value === 'string';
  if (op.op === 'get') return op.at instanceof Date;
  return false;
}

function rewrite(op: BatchOpInput, encoding: BatchEncoding): BatchOp {
  if (op.op === 'put') {
    const bytes = typeof op.value === 'string' ? Buffer.from(op.value, 'utf8') : op.value;
    if (encoding === 'msgpack') return { ...op, value: bytes };
    const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return { ...op, value: b.toString('base64') };
  }
  if (op.op === 'get' && op.at instanceof Date) return { ...op, at: op.at.getTime() * 1000 };
  return op as BatchOp;
}

/** The request body; ops that are already in wire form are packed as given (no copy). */
export function encodeBatch(ops: readonly BatchOpInput[], encoding: BatchEncoding): Buffer {
  let wire: readonly BatchOpInput[] | BatchOp[] = ops;
  for (let i = 0; i < ops.length; i++) {
    if (needsRewrite(ops[i]!, encoding)) {
      wire = ops.map((op) => rewrite(op, encoding));
      break;
    }
  }
  if (encoding === 'msgpack') return packr.pack({ ops: wire });
  return Buffer.from(JSON.stringify({ ops: wire }), 'utf8');
}

/** The largest put value in a batch, in bytes (checked against the body limit before encoding). */
export function largestValueBytes(ops: readonly BatchOpInput[]): number {
  let max = 0;
  for (const op of ops) {
    if (op.op !== 'put') continue;
    const n = typeof op.value === 'string' ? Buffer.byteLength(op.value, 'utf8') : op.value.byteLength;
    if (n > max) max = n;
  }
  return max;
}

/** The results of a batch answer, values as Buffers, checked to be one per op. */
export function decodeBatchResults(body: Buffer, contentType: string | undefined, opsCount: number): BatchOpResult[] {
  let decoded: unknown;
  const msgpack = contentType !== undefined && contentType.startsWith(BATCH_CONTENT_TYPE.msgpack);
  try {
    decoded = msgpack ? unpackr.unpack(body) : JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new SquallError('internal', `the node's batch answer does not decode as ${msgpack ? 'msgpack' : 'JSON'}: ${(e as Error).message}`);
  }
  const results = (decoded as { results?: unknown } | null)?.results;
  if (!Array.isArray(results) || results.length !== opsCount) {
    throw new SquallError('internal', `the node's batch answer has ${Array.isArray(results) ? results.length : 'no'} results for ${opsCount} ops`);
  }
  for (const r of results as BatchResult[]) {
    const v = r.value;
    if (v === undefined) continue;
    if (typeof v === 'string') (r as BatchOpResult).value = Buffer.from(v, 'base64');
    else if (!Buffer.isBuffer(v)) (r as BatchOpResult).value = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  }
  return results as BatchOpResult[];
}
