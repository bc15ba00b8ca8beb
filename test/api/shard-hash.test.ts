import fc from 'fast-check';
import t from 'tap';
import { affinityOf, checkAffinity, compileAffinity, fnv1a32, shardOf } from '../../src/api/index.js';

/** The definition of the hash, over bytes TextEncoder gives: the inline encoding must agree with it. */
function fnv1a32Reference(text: string): number {
  const bytes = new TextEncoder().encode(text);
  let h = 0x811c9dc5;
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

t.test('fnv1a32: known values (part of the wire and disk contract)', async (t) => {
  t.equal(fnv1a32(''), 0x811c9dc5);
  t.equal(fnv1a32('a'), 0xe40c292c);
  t.equal(fnv1a32('foobar'), 0xbf9cf968);
  t.equal(fnv1a32('/p/k'), fnv1a32Reference('/p/k'));
});

t.test('fnv1a32 hashes the UTF-8 bytes: 1 to 4 byte characters and lone surrogates as U+FFFD', async (t) => {
  for (const s of ['é', '€', '😀', '/p/ü/€/😀/x', '\ud800', '\udc00', 'a\ud800b', '\ud83d', '\ud83d\ud83d\ude00', '\u07ff\u0800\uffff']) {
    t.equal(fnv1a32(s), fnv1a32Reference(s), JSON.stringify(s));
  }
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 64 }), (s) => fnv1a32(s) === fnv1a32Reference(s)),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 64 }), (s) => fnv1a32(s) === fnv1a32Reference(s)),
    { numRuns: 2000 },
  );
});

t.test('shardOf: the affinity match (or its first group) decides the shard', async (t) => {
  const cams = compileAffinity('^/cams/([^/]+)/');
  t.equal(affinityOf('/cams/c7/frame1', cams), 'c7');
  t.equal(shardOf('/cams/c7/frame1', 8, cams), shardOf('/cams/c7/frame2', 8, cams));
  t.equal(shardOf('/cams/c7/frame1', 8, cams), fnv1a32('c7') % 8);
  t.equal(shardOf('/other/k', 8, cams), fnv1a32('/other/k') % 8, 'no match: the whole key');
  t.equal(shardOf('/p/k', 1, null), 0);
});

t.test('checkAffinity refuses bad patterns and nested quantifiers, accepts the usual ones', async (t) => {
  for (const ok of ['^/cams/([^/]+)/', '^/p/', '^(/[a-z]+)', '[0-9]{4}-[0-9]{2}']) t.doesNotThrow(() => checkAffinity(ok), ok);
  t.throws(() => checkAffinity('^/rx/(a+)+$'), /nests quantifiers/);
  t.throws(() => checkAffinity('(x*)*y'), /nests quantifiers/);
  t.throws(() => checkAffinity('(unclosed'), SyntaxError);
});
