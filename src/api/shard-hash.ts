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

const encoder = new TextEncoder();

export function fnv1a32(text: string): number {
  const bytes = encoder.encode(text);
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193);
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

/** Compiles a pool's affinity regex; throws SyntaxError on a bad pattern. No global/sticky flags. */
export function compileAffinity(pattern: string | null | undefined): RegExp | null {
  if (pattern === null || pattern === undefined || pattern === '') return null;
  return new RegExp(pattern, 'su');
}
