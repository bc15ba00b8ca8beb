import t from 'tap';
import { KEY_BYTES_MAX, assertKey, assertPoolPath } from '../../src/api/index.js';

const problem = (f: () => void): string | null => {
  try {
    f();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
};

t.test('keys: accepted and refused with the reason', async (t) => {
  for (const ok of ['/p/k', '/p/a/b/c', '/p/...', '/p/.hidden', '/p/a..b', '/p/é€', '/p/' + 'a'.repeat(KEY_BYTES_MAX - 3)]) {
    t.equal(problem(() => assertKey(ok)), null, ok.slice(0, 40));
  }
  const refused: [string, RegExp][] = [
    ['', /empty/],
    ['p/k', /must start with '\/'/],
    ['/p', /needs at least two segments/],
    ['/', /needs at least two segments/],
    ['/p/', /empty segment/],
    ['/p//k', /empty segment/],
    ['/p/./k', /has a '\.' segment/],
    ['/p/k/..', /has a '\.\.' segment/],
    ['/p/a\0b', /NUL/],
    ['/p/\uD800', /not valid UTF-8/],
    ['/p/' + 'a'.repeat(KEY_BYTES_MAX - 2), /longer than 1024 bytes/],
    ['/p/' + '€'.repeat(341), /longer than 1024 bytes/], // 3 + 1023 bytes in 344 characters
  ];
  for (const [key, why] of refused) {
    t.throws(() => assertKey(key), { code: 'bad_key', message: why, details: { key } }, JSON.stringify(key.slice(0, 20)));
  }
  t.equal(problem(() => assertKey('/p/' + '€'.repeat(340))), null, '1023 bytes is fine');
});

t.test('pool paths: one segment is enough', async (t) => {
  t.equal(problem(() => assertPoolPath('/a')), null);
  t.equal(problem(() => assertPoolPath('/a/b')), null);
  t.throws(() => assertPoolPath('/'), { message: /empty segment/, details: { pool: '/' } });
  t.throws(() => assertPoolPath('/a/..'), { message: /'\.\.' segment/ });
  t.throws(() => assertPoolPath('a'), { message: /must start with/ });
});
