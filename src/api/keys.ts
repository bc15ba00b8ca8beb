import { SquallError } from './errors.js';

/** Limits on names, from API.md. */
export const KEY_BYTES_MAX = 1024;

const encoder = new TextEncoder();

function checkPath(path: string, what: 'key' | 'pool path', segmentsMin: number): string | null {
  if (typeof path !== 'string' || path.length === 0) return `${what} is empty`;
  if (path.charCodeAt(0) !== 0x2f) return `${what} must start with '/'`;
  // A UTF-16 unit is at most 3 UTF-8 bytes: only long paths need encoding to count (keys are on the hot path).
  if (path.length * 3 > KEY_BYTES_MAX && encoder.encode(path).length > KEY_BYTES_MAX) {
    return `${what} is longer than ${KEY_BYTES_MAX} bytes`;
  }
  if (path.includes('\0')) return `${what} contains a NUL character`;
  // lone surrogates cannot be encoded as UTF-8
  if (!path.isWellFormed()) return `${what} is not valid UTF-8`;
  // Segments are walked in place rather than split into an array.
  let segments = 0;
  for (let i = 0; i !== -1; i = path.indexOf('/', i + 1)) segments++;
  if (segments < segmentsMin) {
    return what === 'key' ? `key '${path}' needs at least two segments (/pool/name)` : `${what} '${path}' has no segment`;
  }
  for (let start = 1; start <= path.length; ) {
    let end = path.indexOf('/', start);
    if (end === -1) end = path.length;
    const length = end - start;
    if (length === 0) return `${what} '${path}' has an empty segment`;
    if (length <= 2 && path.charCodeAt(start) === 0x2e && (length === 1 || path.charCodeAt(start + 1) === 0x2e)) {
      return `${what} '${path}' has a '${path.slice(start, end)}' segment`;
    }
    start = end + 1;
  }
  return null;
}

/** Throws 400 bad_key unless `key` is an absolute path /pool/.../name as API.md defines it. */
export function assertKey(key: string): void {
  const problem = checkPath(key, 'key', 2);
  if (problem) throw new SquallError('bad_key', problem, { key });
}

/** Throws 400 bad_key unless `path` is a valid pool path (/a or /a/b/...). */
export function assertPoolPath(path: string): void {
  const problem = checkPath(path, 'pool path', 1);
  if (problem) throw new SquallError('bad_key', problem, { pool: path });
}

/** Throws 400 bad_parameter unless a Squall-Request-Id is 1 to `bytesMax` bytes (the one rule, at every layer). */
export function assertRequestId(requestId: string, bytesMax: number): void {
  if (requestId.length === 0 || Buffer.byteLength(requestId) > bytesMax) {
    throw new SquallError('bad_parameter', `request id must be 1 to ${bytesMax} bytes`, { header: 'Squall-Request-Id', limit_bytes: bytesMax });
  }
}

/** The directory of a key: everything before its last '/'. */
export function keyDirectory(key: string): string {
  return key.slice(0, key.lastIndexOf('/'));
}

/** The pool paths a key could belong to, shortest first: /a, /a/b, ... up to the key's directory. */
export function candidatePools(key: string): string[] {
  const dir = keyDirectory(key);
  const out: string[] = [];
  let i = 0;
  while ((i = dir.indexOf('/', i + 1)) !== -1) out.push(dir.slice(0, i));
  if (dir.length > 0) out.push(dir);
  return out;
}

/** True when `a` is `b` or a path-component prefix of it (/a is a prefix of /a/b, not of /ab). */
export function isPathPrefix(a: string, b: string): boolean {
  return b === a || b.startsWith(a + '/');
}
