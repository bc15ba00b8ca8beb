import { createHash } from 'node:crypto';
import type { Hono } from 'hono';
import { Packr, Unpackr } from 'msgpackr';
import { SquallError } from '../src/api/errors.js';
import { parseTimeUs } from '../src/api/time.js';
import type { Durability } from '../src/api/types.js';
import type { BatchOperation, ReadOptions, WriteOptions } from '../src/store/index.js';
import { readBody } from './body.js';
import type { AppEnv, HttpContext } from './context.js';
import { writeOptions } from './objects.js';
import { Params } from './params.js';

/**
 * POST /v1/batch: many operations in one request (the throughput path). Each op succeeds or fails on its
 * own; ops on one shard keep their order (a get sees the writes before it in the batch); shards run in
 * parallel. Squall-Durability applies to every write; Squall-Request-Id makes each write idempotent (see
 * opRequestId). Conditions go per op in the body (`if_match`, `if_none_match`): If-Match and
 * If-None-Match headers are refused, not applied to every op. The body is msgpack (values as bytes) or
 * JSON (values base64); the answer uses the same.
 */
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

type ParsedOp = BatchOperation;

export function batchRoutes(app: Hono<AppEnv>, ctx: HttpContext): void {
  const { store } = ctx;
  app.post('/v1/batch', async (c) => {
    new Params(c.req.url, []);
    const incoming = c.env.incoming;
    const type = (incoming.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const msgpack = type === 'application/msgpack' || type === 'application/x-msgpack';
    if (!msgpack && type !== 'application/json') {
      throw new SquallError('bad_body', `batch Content-Type must be application/msgpack or application/json, not '${type || 'none'}'`);
    }
    for (const name of ['If-Match', 'If-None-Match']) {
      if (incoming.headers[name.toLowerCase()] !== undefined) {
        throw new SquallError('bad_parameter', `${name} does not apply to a batch: give each op its condition in the body (if_match, if_none_match)`, { header: name });
      }
    }
    const idBytesMax = store.limits.requestIdBytesMax;
    const shared = writeOptions(incoming.headers, idBytesMax);
    const body = await readBody(incoming, store.limits.batchBytesMax, 'batch');
    let decoded: unknown;
    try {
      decoded = msgpack ? unpackr.unpack(body) : JSON.parse(body.toString('utf8'));
    } catch (e) {
      throw new SquallError('bad_body', `batch body is not valid ${msgpack ? 'msgpack' : 'JSON'}: ${(e as Error).message}`);
    }
    const ops = parseOps(decoded, msgpack, shared, store.limits.batchOpsMax, idBytesMax);
    const results = await store.batch(ops);
    if (!msgpack) {
      for (const r of results) if (r.value instanceof Uint8Array) r.value = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength).toString('base64');
      return c.json({ results });
    }
    return c.body(packr.pack({ results }) as Uint8Array<ArrayBuffer>, 200, { 'content-type': 'application/msgpack' });
  });
}

/** Fewest characters of the digest in a derived request id: 132 bits, so two distinct ids sharing one is not a practical risk. */
const DIGEST_CHARS_MIN = 22;

/**
 * The request id of write `index` of a batch sent with request id `id` (already 1 to `bytesMax` bytes):
 * `<id>:<index>` (the form ids had before, so retries across an upgrade still match), or, when that is
 * longer than `bytesMax`, `<digest of id>:<index>` with as much of the base64url SHA-256 of `id` as fits.
 * So every id a single request takes works on a batch too, and a retried batch derives the same ids. 400
 * only when the limit leaves no room for a safe digest (a limit configured below about 30 bytes).
 */
function opRequestId(id: string, index: number, bytesMax: number): string {
  const suffix = `:${index}`;
  if (Buffer.byteLength(id) + suffix.length <= bytesMax) return id + suffix;
  const room = bytesMax - suffix.length;
  if (room < DIGEST_CHARS_MIN) {
    throw new SquallError(
      'bad_parameter',
      `request id of a batch must be at most ${room} bytes here (the limit is ${bytesMax} bytes, and op ${index} adds '${suffix}')`,
      { header: 'Squall-Request-Id', limit_bytes: bytesMax },
    );
  }
  return createHash('sha256').update(id).digest('base64url').slice(0, room) + suffix;
}

function parseOps(body: unknown, msgpack: boolean, shared: WriteOptions, opsMax: number, idBytesMax: number): ParsedOp[] {
  const ops = (body as { ops?: unknown } | null)?.ops;
  if (!Array.isArray(ops)) throw new SquallError('bad_body', 'batch body must be {"ops":[...]}');
  if (ops.length > opsMax) throw new SquallError('bad_body', `batch has ${ops.length} ops; the limit is ${opsMax}`, { limit: opsMax });
  return ops.map((raw, i): ParsedOp => {
    const bad = (why: string): SquallError => new SquallError('bad_body', `ops[${i}]: ${why}`, { index: i });
    if (raw === null || typeof raw !== 'object') throw bad('not an object');
    const o = raw as Record<string, unknown>;
    if (typeof o.key !== 'string') throw bad('key must be a string');
    const key = o.key;
    const writeOpts = (): WriteOptions => {
      const w: WriteOptions = {};
      if (shared.durability !== undefined) w.durability = shared.durability as Durability;
      if (shared.requestId !== undefined) w.requestId = opRequestId(shared.requestId, i, idBytesMax);
      if (o.if_match !== undefined) {
        if (!Number.isSafeInteger(o.if_match) || (o.if_match as number) < 0) throw bad('if_match must be a version');
        w.ifMatch = o.if_match as number;
      }
      return w;
    };
    switch (o.op) {
      case 'put': {
        let value: Uint8Array;
        if (msgpack && o.value instanceof Uint8Array) value = o.value;
        else if (typeof o.value === 'string') {
          if (msgpack) value = Buffer.from(o.value, 'utf8');
          else {
            if (!/^[A-Za-z0-9+/]*={0,2}$/.test(o.value)) throw bad('value must be base64 in JSON');
            value = Buffer.from(o.value, 'base64');
          }
        } else throw bad(msgpack ? 'value must be bytes' : 'value must be a base64 string');
        const w = writeOpts();
        if (o.if_none_match !== undefined) {
          if (o.if_none_match !== '*') throw bad("if_none_match supports only '*'");
          w.ifNoneMatch = true;
        }
        if (o.content_type !== undefined) {
          if (typeof o.content_type !== 'string') throw bad('content_type must be a string');
          w.contentType = o.content_type;
        }
        return { op: 'put', key, value, options: w };
      }
      case 'delete':
        return { op: 'delete', key, options: writeOpts() };
      case 'get': {
        const r: ReadOptions = {};
        if (o.version !== undefined) {
          if (!Number.isSafeInteger(o.version) || (o.version as number) < 0) throw bad('version must be a version');
          r.version = o.version as number;
        }
        if (o.at !== undefined) {
          const at = typeof o.at === 'number' ? o.at : typeof o.at === 'string' ? parseTimeUs(o.at) : null;
          if (at === null || !Number.isSafeInteger(at) || at < 0) throw bad('at must be µs since the epoch or RFC 3339');
          r.atUs = at;
        }
        if (o.stable !== undefined) {
          if (typeof o.stable !== 'boolean') throw bad('stable must be a boolean');
          r.stable = o.stable;
        }
        return { op: 'get', key, options: r };
      }
      default:
        throw bad(`op must be put, get or delete, not ${JSON.stringify(o.op)}`);
    }
  });
}

