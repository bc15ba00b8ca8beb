import t from 'tap';
import { mbPerSecond, median, ratio } from '../../bench/stats.js';

t.test('median', async (t) => {
  t.equal(median([]), null);
  t.equal(median([7]), 7);
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5);
  t.equal(median([10, 1000, 20]), 20, 'an outlier does not move it');
  const xs = [5, 3, 9];
  median(xs);
  t.same(xs, [5, 3, 9], 'input left unsorted');
});

t.test('ratio', async (t) => {
  t.equal(ratio(10, 4), 2.5);
  t.equal(ratio(10, 0), null);
  t.equal(ratio(null, 4), null);
  t.equal(ratio(4, undefined), null);
});

t.test('MB/s is 10^6 bytes per second', async (t) => {
  t.equal(mbPerSecond(1000, 1024), 1.024);
  t.equal(mbPerSecond(0, 1024), 0);
});
