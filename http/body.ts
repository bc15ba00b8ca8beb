import type { IncomingMessage } from 'node:http';
import { SquallError } from '../src/api/errors.js';

/**
 * Reads a request body with a size limit checked before anything is read (Content-Length) and again
 * while reading (chunked bodies), so an oversized upload costs no more than the limit in memory.
 */
export function declaredLength(incoming: IncomingMessage, limitBytes: number, what: string): number | null {
  const header = incoming.headers['content-length'];
  if (header === undefined) return null;
  const n = Number(header);
  if (!Number.isSafeInteger(n) || n < 0) throw new SquallError('bad_body', `Content-Length '${header}' is not a byte count`);
  if (n > limitBytes) throw tooLarge(what, n, limitBytes);
  return n;
}

export async function readBody(incoming: IncomingMessage, limitBytes: number, what: string): Promise<Buffer> {
  const declared = declaredLength(incoming, limitBytes, what);
  if (declared === 0) return EMPTY;
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of incoming as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limitBytes) {
      incoming.destroy();
      throw tooLarge(what, total, limitBytes);
    }
    chunks.push(chunk);
  }
  if (declared !== null && total !== declared) throw new SquallError('bad_body', `body ended after ${total} of ${declared} bytes`);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
}

function tooLarge(what: string, size: number, limit: number): SquallError {
  return new SquallError('too_large', `${what} of ${size} bytes is above the limit of ${limit} bytes`, { limit_bytes: limit });
}

const EMPTY = Buffer.alloc(0);
