import { InvalidArgumentError } from 'commander';
import { checkAffinity, parseTimeUs, parseVersion } from '../api/index.js';

/** Parsers for command-line values: a bad value is a usage error (exit 2) naming what was expected. */

export function versionArg(text: string): number {
  const v = parseVersion(text);
  if (v === null) throw new InvalidArgumentError('not a version (a non-negative integer).');
  return v;
}

export function timeArg(text: string): number {
  const us = parseTimeUs(text);
  if (us === null) {
    throw new InvalidArgumentError('not a time: give RFC 3339 (e.g. 2026-11-25T13:50:02.123456Z) or integer microseconds since the epoch.');
  }
  return us;
}

export function countArg(text: string): number {
  const n = parseVersion(text);
  if (n === null) throw new InvalidArgumentError('not a non-negative integer.');
  return n;
}

export function positiveArg(text: string): number {
  const n = parseVersion(text);
  if (n === null || n === 0) throw new InvalidArgumentError('not a positive integer.');
  return n;
}

export function portArg(text: string): number {
  const n = parseVersion(text);
  if (n === null || n > 65535) throw new InvalidArgumentError('not a port (0-65535).');
  return n;
}

export function urlArg(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidArgumentError('not a URL (e.g. http://127.0.0.1:8080).');
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.pathname !== '/' || url.search !== '') {
    throw new InvalidArgumentError('must be http(s)://host:port with no path.');
  }
  return url.origin;
}

export function regexArg(text: string): string {
  try {
    checkAffinity(text);
  } catch (e) {
    throw new InvalidArgumentError(`not a usable affinity regular expression: ${(e as Error).message}.`);
  }
  return text;
}

/** A usage problem found after parsing (e.g. two sources for one value): exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
