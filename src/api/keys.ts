import { SquallError } from './errors.js';

/** Limits on names, from API.md. */
export const KEY_BYTES_MAX = 1024;

const encoder = new TextEncoder();

function checkPath(path: string, what: 'key' | 'pool path', segmentsMin: number): string | null {
  if (typeof path !== 'string' || path.length === 0) return `${what} is empty`;
  if (!path.startsWith('/')) return `${what} must start with '/'`;
  if (encoder.encode(path).length > KEY_BYTES_MAX) return `${what} is longer than ${KEY_BYTES_MAX} bytes`;
  if (path.includes('\0')) return `${what} contains a NUL character`;
  // lone surrogates cannot be encoded as UTF-8
  if (!path.isWellFormed()) return `${what} is not valid UTF-8`;
  const segments = path.slice(1).split('/');
  if (segments.length < segmentsMin) {
    return what === 'key' ? `key '${path}' needs at least two segments (/pool/name)` : `${what} '${path}' has no segment`;
  }
  for (const s of segments) {
    if (s === '') return `${what} '${path}' has an empty segment`;
    if (s === '.' || s === '..') return `${what} '${path}' has a '${s}' segment`;
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
