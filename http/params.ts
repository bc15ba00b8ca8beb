import { SquallError } from '../src/api/errors.js';
import { parseTimeUs, parseVersion } from '../src/api/time.js';

/**
 * Query-string validation at the edge: every parameter a route accepts is named; anything else, a
 * parameter given twice (which of the values would count is a guess), or a malformed value, is 400
 * bad_parameter with the parameter named.
 */
export class Params {
  readonly #query: URLSearchParams;

  constructor(url: string, allowed: readonly string[]) {
    const q = url.indexOf('?');
    this.#query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
    for (const name of this.#query.keys()) {
      if (!allowed.includes(name)) {
        throw new SquallError('bad_parameter', `unknown parameter '${name}' (this route takes: ${allowed.join(', ') || 'none'})`, { parameter: name });
      }
      const count = this.#query.getAll(name).length;
      if (count > 1) throw new SquallError('bad_parameter', `parameter ${name} is given ${count} times; give it once`, { parameter: name });
    }
  }

  /** 400 bad_parameter naming the first of `names` that is present; `why` ends the sentence "parameter X ...". */
  refuse(names: readonly string[], why: string): void {
    for (const name of names) {
      if (this.#query.has(name)) throw new SquallError('bad_parameter', `parameter ${name} ${why}`, { parameter: name });
    }
  }

  string(name: string): string | undefined {
    return this.#query.get(name) ?? undefined;
  }

  version(name: string): number | undefined {
    const v = this.#query.get(name);
    if (v === null) return undefined;
    const n = parseVersion(v);
    if (n === null) throw bad(name, v, 'a version (non-negative integer)');
    return n;
  }

  timeUs(name: string): number | undefined {
    const v = this.#query.get(name);
    if (v === null) return undefined;
    const n = parseTimeUs(v);
    if (n === null) throw bad(name, v, 'a time: integer microseconds since the epoch or RFC 3339');
    return n;
  }

  integer(name: string, min: number, max: number): number | undefined {
    const v = this.#query.get(name);
    if (v === null) return undefined;
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw bad(name, v, `an integer from ${min} to ${max}`);
    return Number(v);
  }

  /** A switch like `?history`: true when given bare or `=true`, false when absent; any other value is refused. */
  flag(name: string): boolean {
    const v = this.#query.get(name);
    if (v === null) return false;
    if (v === '' || v === 'true') return true;
    throw new SquallError('bad_parameter', `parameter ${name}='${v}' is not taken: give ?${name} or ?${name}=true, or leave it out`, { parameter: name });
  }

  boolean(name: string): boolean | undefined {
    const v = this.#query.get(name);
    if (v === null) return undefined;
    if (v === '' || v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw bad(name, v, 'true or false');
  }
}

function bad(name: string, value: string, expected: string): SquallError {
  return new SquallError('bad_parameter', `parameter ${name}='${value}' is not ${expected}`, { parameter: name });
}
