import t from 'tap';
import { CommanderError } from 'commander';
import { formatSize, kvCommand, parseKvOptions, parseSize } from '../../bench/kv-options.js';

const parse = (argv: string[]) =>
  parseKvOptions(argv, kvCommand().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} }));

t.test('sizes in bytes, binary and decimal units', async (t) => {
  t.equal(parseSize('100'), 100);
  t.equal(parseSize('1KiB'), 1024);
  t.equal(parseSize('1k'), 1024);
  t.equal(parseSize('64KiB'), 65536);
  t.equal(parseSize('1MiB'), 1048576);
  t.equal(parseSize('1mib'), 1048576);
  t.equal(parseSize('1KB'), 1000);
  t.equal(parseSize('1.5MB'), 1_500_000);
  t.equal(parseSize(' 2 GiB '), 2 * 1024 ** 3);
  for (const bad of ['', 'KiB', '1XB', '-1', '0', '1.5', '0.1KiB', '1 2']) t.throws(() => parseSize(bad), `'${bad}' is refused`);
});

t.test('sizes print in the largest unit that divides them', async (t) => {
  t.equal(formatSize(100), '100 B');
  t.equal(formatSize(1024), '1 KiB');
  t.equal(formatSize(65536), '64 KiB');
  t.equal(formatSize(1048576), '1 MiB');
  t.equal(formatSize(1536), '1536 B');
});

t.test('defaults are the full matrix of the issue', async (t) => {
  const o = parse([]);
  t.same(o.ops, ['put', 'get', 'get-past', 'mixed']);
  t.same(o.sizesBytes, [100, 1024, 65536, 1048576]);
  t.same(o.concurrencies, [1, 16, 64]);
  t.same(o.batches, [1]);
  t.equal(o.runs, 3);
  t.equal(o.baseline, 'squall');
  t.equal(o.url, 'http://127.0.0.1:8080');
  t.equal(o.progress, true);
  t.equal(o.json, undefined);
  t.equal(o.preloadBytesMax, 256 * 1024 * 1024);
  t.equal(o.clusterSize, 3);
  t.same(o.targets, ['squall', 'etcd', 'redis'], 'registered targets except optional ones (etcd-json)');
});

t.test('narrowing options', async (t) => {
  const o = parse(['--targets', 'redis,etcd', '--op', 'get-past,put', '--size', '1KiB,100,1KiB', '--concurrency', '64,1', '--batch', '1,100', '--seconds', '0.5', '--runs', '5', '--json', 'out.json', '--no-progress', '--url', 'http://127.0.0.1:9000', '--cluster', '5']);
  t.same(o.targets, ['redis', 'etcd'], 'order kept');
  t.same(o.ops, ['get-past', 'put']);
  t.same(o.sizesBytes, [1024, 100], 'duplicates dropped');
  t.same(o.concurrencies, [64, 1]);
  t.same(o.batches, [1, 100]);
  t.equal(o.seconds, 0.5);
  t.equal(o.runs, 5);
  t.equal(o.json, 'out.json');
  t.equal(o.progress, false);
  t.equal(o.url, 'http://127.0.0.1:9000');
  t.equal(o.clusterSize, 5);
});

t.test('bad values are refused with a commander error', async (t) => {
  for (const argv of [['--targets', 'etcd,nosuch'], ['--op', 'scan'], ['--size', '1XB'], ['--concurrency', '0'], ['--runs', '1.5'], ['--seconds', '-1'], ['--batch', ''], ['--frobnicate']]) {
    t.throws(() => parse(argv), CommanderError, argv.join(' '));
  }
});
