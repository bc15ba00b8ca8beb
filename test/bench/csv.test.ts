import t from 'tap';
import { toCsv } from '../../bench/csv.js';

t.test('header, column order, quoting and empty cells', async (t) => {
  const csv = toCsv(['b', 'a', 'c'], [
    { a: 1, b: 'plain', c: null },
    { a: 2.5, b: 'has,comma', c: 'say "hi"' },
    { a: 3, b: 'two\nlines', c: 0 },
  ]);
  t.equal(csv, 'b,a,c\nplain,1,\n"has,comma",2.5,"say ""hi"""\n"two\nlines",3,0\n');
});
