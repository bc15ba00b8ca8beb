import { SquallError, parseTimeUs } from '../api/index.js';

/** A point in time as the client accepts it: µs since the Unix epoch, a Date, or RFC 3339 text (or µs digits). */
export type TimeArg = number | Date | string;

/** µs since the epoch for an `at` argument; throws bad_parameter (nothing is sent) when it is not a time. */
export function timeArgToUs(at: TimeArg, name = 'at'): number {
  if (typeof at === 'number') {
    if (Number.isSafeInteger(at) && at >= 0) return at;
  } else if (at instanceof Date) {
    const ms = at.getTime();
    if (Number.isFinite(ms) && ms >= 0) return ms * 1000;
  } else if (typeof at === 'string') {
    const us = parseTimeUs(at);
    if (us !== null) return us;
  }
  const shown = at instanceof Date ? String(at) : JSON.stringify(at);
  throw new SquallError(
    'bad_parameter',
    `${name} must be integer microseconds since the epoch, a Date, or RFC 3339 text; got ${shown}`,
    { parameter: name },
  );
}

/** Throws bad_parameter unless `v` is a non-negative safe integer (a version, a count, a wait in ms). */
export function checkIntArg(v: number, name: string): number {
  if (Number.isSafeInteger(v) && v >= 0) return v;
  throw new SquallError('bad_parameter', `${name} must be a non-negative integer, got ${String(v)}`, { parameter: name });
}
