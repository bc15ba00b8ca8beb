import { Packr, Unpackr } from 'msgpackr';
import { SquallError } from '../api/errors.js';
import { ERROR_STATUS, type ErrorCode } from '../api/types.js';

/**
 * Calls to another member about a shard this member does not order (DESIGN.md: any node accepts any
 * request and forwards it). The store names the shard and the method; the node layer picks a member of
 * the shard and carries the call over the group's P2P request/reply. The member that receives it runs
 * the method locally only (never forwards again), or answers `unavailable` with not_serving so the caller
 * tries another member.
 */
export type RemoteMethod = 'put' | 'delete' | 'get' | 'history' | 'listShard' | 'batch' | 'pool+' | 'pool-' | 'watchPull';

export interface RemoteCalls {
  call(shard: string, method: RemoteMethod, args: unknown): Promise<unknown>;
}

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export function encodeRemoteRequest(shard: string, method: RemoteMethod, args: unknown): Uint8Array {
  return packr.pack({ s: shard, m: method, a: args });
}

export function decodeRemoteRequest(bytes: Uint8Array): { shard: string; method: RemoteMethod; args: unknown } {
  const r = unpackr.unpack(bytes) as { s: string; m: RemoteMethod; a: unknown };
  return { shard: r.s, method: r.m, args: r.a };
}

export function encodeRemoteReply(result: unknown): Uint8Array {
  return packr.pack({ ok: result ?? null });
}

export function encodeRemoteError(e: unknown): Uint8Array {
  if (e instanceof SquallError) {
    return packr.pack({ err: { code: e.code, message: e.message, details: e.details, retry: e.retryAfterS ?? null } });
  }
  return packr.pack({ err: { code: 'internal', message: e instanceof Error ? e.message : String(e), details: {}, retry: null } });
}

/** The result of a remote call, or the SquallError it answered. */
export function decodeRemoteReply(bytes: Uint8Array): unknown {
  const r = unpackr.unpack(bytes) as { ok?: unknown; err?: { code: string; message: string; details: Record<string, unknown>; retry: number | null } };
  if (r.err) {
    const code = (r.err.code in ERROR_STATUS ? r.err.code : 'internal') as ErrorCode;
    throw new SquallError(code, r.err.message, r.err.details, r.err.retry ?? undefined);
  }
  return r.ok;
}
