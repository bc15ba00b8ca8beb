/**
 * Keys and pool paths in request URLs. A key is a path (/pool/.../name); each segment is percent-encoded on
 * its own so '/' stays the separator, and '.'/'..' segments are encoded so that no URL normaliser on the
 * way folds them (the server then sees, and refuses, exactly what the caller sent).
 */

const PLAIN = /^[\w\-.~/]*$/;

function encodeSegment(s: string): string {
  if (s === '.') return '%2E';
  if (s === '..') return '%2E%2E';
  return encodeURIComponent(s);
}

/** The URL form of a key or pool path (which starts with '/'). */
export function encodePath(path: string): string {
  // Fast path: only unreserved characters and no segment starting with a dot.
  if (PLAIN.test(path) && !path.includes('/.')) return path;
  return path.split('/').map(encodeSegment).join('/');
}

/**
 * Query string builder for the few parameters a call sends: appends `&name=value` pairs and yields ''
 * when nothing was added, so calls without options build no query at all.
 */
export class Query {
  private text = '';

  add(name: string, value: string | number | boolean | undefined | null): this {
    if (value === undefined || value === null) return this;
    this.text += (this.text === '' ? '?' : '&') + name + '=' + (typeof value === 'string' ? encodeURIComponent(value) : String(value));
    return this;
  }

  /** A parameter without a value, e.g. `?history`. */
  flag(name: string): this {
    this.text += (this.text === '' ? '?' : '&') + name;
    return this;
  }

  toString(): string {
    return this.text;
  }
}
