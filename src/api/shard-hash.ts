/**
 * Key → shard, stable across platforms and versions (API.md "Routing"):
 *
 *   shard = fnv1a32(utf8(affinity(key))) mod shards
 *
 * fnv1a32 is the 32-bit FNV-1a hash (offset basis 2166136261, prime 16777619) over the UTF-8 bytes.
 * affinity(key) is the whole key, or, when the pool has an affinity regex, the regex's first match in the
 * key (its first capture group when it has one); a key the regex does not match uses the whole key.
 * Keys with the same affinity land on the same shard, e.g. regex "^/cams/[^/]+/" keeps each camera's
 * objects together. Changing this function moves data: it is part of the on-disk and wire contract.
 */
import safeRegex from 'safe-regex2';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * FNV-1a over the UTF-8 bytes of `text`, encoded on the fly (no buffer per call: clients hash every key they
 * route). A lone surrogate counts as U+FFFD, as TextEncoder encodes it.
 */
export function fnv1a32(text: string): number {
  let h = FNV_OFFSET;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      h = Math.imul(h ^ c, FNV_PRIME);
      continue;
    }
    if (c < 0x800) {
      h = Math.imul(h ^ (0xc0 | (c >> 6)), FNV_PRIME);
      h = Math.imul(h ^ (0x80 | (c & 0x3f)), FNV_PRIME);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = c <= 0xdbff && i + 1 < n ? text.charCodeAt(i + 1) : 0;
      if (d >= 0xdc00 && d <= 0xdfff) {
        const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        h = Math.imul(h ^ (0xf0 | (cp >> 18)), FNV_PRIME);
        h = Math.imul(h ^ (0x80 | ((cp >> 12) & 0x3f)), FNV_PRIME);
        h = Math.imul(h ^ (0x80 | ((cp >> 6) & 0x3f)), FNV_PRIME);
        h = Math.imul(h ^ (0x80 | (cp & 0x3f)), FNV_PRIME);
        continue;
      }
      c = 0xfffd;
    }
    h = Math.imul(h ^ (0xe0 | (c >> 12)), FNV_PRIME);
    h = Math.imul(h ^ (0x80 | ((c >> 6) & 0x3f)), FNV_PRIME);
    h = Math.imul(h ^ (0x80 | (c & 0x3f)), FNV_PRIME);
  }
  return h >>> 0;
}

export function affinityOf(key: string, affinity: RegExp | null): string {
  if (!affinity) return key;
  const m = affinity.exec(key);
  if (!m) return key;
  return m.length > 1 && m[1] !== undefined ? m[1] : m[0];
}

export function shardOf(key: string, shards: number, affinity: RegExp | null): number {
  if (shards <= 1) return 0;
  return fnv1a32(affinityOf(key, affinity)) % shards;
}

/**
 * Checks the affinity pattern of a new pool: a valid regex without nested quantifiers (like `(a+)+`), which
 * can backtrack for exponential time on a crafted key and stall the member that routes it. Throws SyntaxError.
 */
export function checkAffinity(pattern: string): void {
  compileAffinity(pattern);
  if (!safeRegex(pattern)) {
    throw new SyntaxError(`'${pattern}' nests quantifiers (like (a+)+): matching some keys would take exponential time`);
  }
}

/** Compiles a pool's affinity regex; throws SyntaxError on a bad pattern. No global/sticky flags. */
export function compileAffinity(pattern: string | null | undefined): RegExp | null {
  if (pattern === null || pattern === undefined || pattern === '') return null;
  return new RegExp(pattern, 'su');
}
