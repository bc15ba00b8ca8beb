import type { IncomingMessage, ServerResponse } from 'node:http';
import { SquallError } from '../src/api/errors.js';

/**
 * Reads a request body with a size limit checked before anything is read (Content-Length) and again
 * while reading (chunked bodies), so an oversized upload costs no more than the limit in memory. On
 * overflow reading stops (the stream is paused, not destroyed) so the 413 answer still reaches the
 * client; the HTTP adapter discards the unread rest.
 */
export function declaredLength(incoming: IncomingMessage, limitBytes: number, what: string): number | null {
  const header = incoming.headers['content-length'];
  if (header === undefined) return null;
  const n = Number(header);
  if (!Number.isSafeInteger(n) || n < 0) throw new SquallError('bad_body', `Content-Length '${header}' is not a byte count`);
  if (n > limitBytes) throw tooLarge(what, n, limitBytes);
  return n;
}

/**
 * Requests that asked for an interim `100 Continue` (Expect: 100-continue), held back until their body is
 * wanted: the server's checkContinue listener (src/node/http-server.ts) records them instead of letting Node
 * answer 100 at once, so a client told 413 (or 404...) never sends a body that would be thrown away.
 */
const continueHeld = new WeakMap<IncomingMessage, ServerResponse>();

export function holdContinue(incoming: IncomingMessage, outgoing: ServerResponse): void {
  continueHeld.set(incoming, outgoing);
}

function sendContinue(incoming: IncomingMessage): void {
  const outgoing = continueHeld.get(incoming);
  if (outgoing === undefined) return;
  continueHeld.delete(incoming);
  if (!outgoing.headersSent) outgoing.writeContinue();
}

export function readBody(incoming: IncomingMessage, limitBytes: number, what: string): Promise<Buffer> {
  const declared = declaredLength(incoming, limitBytes, what);
  sendContinue(incoming); // the declared size passed: the client may send the body now
  if (declared === 0) return Promise.resolve(EMPTY);
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const done = (): void => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > limitBytes) {
        done();
        incoming.pause();
        reject(tooLarge(what, total, limitBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      done();
      if (declared !== null && total !== declared) reject(new SquallError('bad_body', `body ended after ${total} of ${declared} bytes`));
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total));
    };
    const onError = (e: Error): void => {
      done();
      reject(new SquallError('bad_body', `reading the body failed: ${e.message}`));
    };
    const onAborted = (): void => onError(new Error('the client aborted the request'));
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
    incoming.on('aborted', onAborted);
  });
}

function tooLarge(what: string, size: number, limit: number): SquallError {
  return new SquallError('too_large', `${what} of ${size} bytes is above the limit of ${limit} bytes`, { limit_bytes: limit });
}

const EMPTY = Buffer.alloc(0);
