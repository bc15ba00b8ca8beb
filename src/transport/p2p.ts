import { assert } from '../assert.js';
import { FrameKind, P2P_REPLY_HEADER_BYTES, P2P_REQUEST_HEADER_BYTES, readU53, writeHeader, writeU53 } from './wire.js';

/**
 * P2P request/reply between members: the bookkeeping of outstanding requests (ids, targets, deadlines)
 * and the frame layouts. The group core decides when a request fails (timeout, target left the view).
 *
 * Invariants: request ids are unique per member process; a request is resolved at most once (reply,
 * timeout or target lost, whichever comes first); at most `outstandingMax` requests are open.
 */

export const P2PStatus = { ok: 0, error: 1 } as const;

interface Open {
  readonly to: number;
  readonly deadlineUs: number;
}

export class PeerRequests {
  #nextId = 1;
  readonly #open = new Map<number, Open>();

  constructor(readonly outstandingMax: number) {}

  get size(): number {
    return this.#open.size;
  }

  open(to: number, deadlineUs: number): number {
    assert(this.#open.size < this.outstandingMax, 'too many outstanding P2P requests');
    const id = this.#nextId++;
    this.#open.set(id, { to, deadlineUs });
    return id;
  }

  /** Close a request (reply arrived); undefined if it was already resolved. */
  close(id: number): Open | undefined {
    const o = this.#open.get(id);
    this.#open.delete(id);
    return o;
  }

  /** Ids whose deadline passed; they are closed. */
  expired(nowUs: number): number[] {
    const out: number[] = [];
    for (const [id, o] of this.#open) if (o.deadlineUs <= nowUs) out.push(id);
    for (const id of out) this.#open.delete(id);
    return out;
  }

  /** Ids of requests to members for which `lost(to)` holds; they are closed. */
  closeWhere(lost: (to: number) => boolean): Array<{ id: number; to: number }> {
    const out: Array<{ id: number; to: number }> = [];
    for (const [id, o] of this.#open) if (lost(o.to)) out.push({ id, to: o.to });
    for (const { id } of out) this.#open.delete(id);
    return out;
  }
}

export function encodeRequest(view: number, id: number, payload: Uint8Array): Uint8Array[] {
  const head = new Uint8Array(P2P_REQUEST_HEADER_BYTES);
  writeHeader(head, FrameKind.p2pRequest, 0, view);
  writeU53(head, 8, id);
  return payload.length > 0 ? [head, payload] : [head];
}

export function encodeReply(view: number, id: number, status: number, payload: Uint8Array): Uint8Array[] {
  const head = new Uint8Array(P2P_REPLY_HEADER_BYTES);
  writeHeader(head, FrameKind.p2pReply, 0, view);
  writeU53(head, 8, id);
  head[16] = status;
  return payload.length > 0 ? [head, payload] : [head];
}

export function decodeRequest(frame: Uint8Array): { id: number; payload: Uint8Array } {
  return { id: readU53(frame, 8), payload: frame.subarray(P2P_REQUEST_HEADER_BYTES) };
}

export function decodeReply(frame: Uint8Array): { id: number; status: number; payload: Uint8Array } {
  return { id: readU53(frame, 8), status: frame[16]!, payload: frame.subarray(P2P_REPLY_HEADER_BYTES) };
}
