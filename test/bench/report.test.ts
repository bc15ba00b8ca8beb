import t from 'tap';
import { formatMachine, formatTables, machineInfo, table } from '../../bench/report.js';
import type { BenchRow } from '../../bench/target.js';

const row = (target: string, concurrency: number, ops: number | null, p99: number | null, extra: Partial<BenchRow> = {}): BenchRow => ({
  target, op: 'put', size_bytes: 1024, concurrency, batch: 1, ops_per_s: ops, mb_per_s: ops === null ? null : (ops * 1024) / 1e6,
  p50_ms: p99 === null ? null : p99 / 2, p99_ms: p99, durability: `${target} durability`, runs: 3, keys: 1000, errors: 0, load_1m: 1, ...extra,
});

t.test('one table per workload with ratios to the baseline in the same cell', async (t) => {
  const rows = [row('squall', 1, 1000, 2), row('etcd', 1, 100, 8), row('redis', 1, 500, 4), row('squall', 64, 20_000, 10), row('etcd', 64, 2_000, 20), row('redis', 64, null, null, { runs: 0, note: 'n/a: test' })];
  const text = formatTables(rows, 'squall');
  t.match(text, /== put 1 KiB \(medians of 3 runs\)/);
  t.match(text, /squall ×ops\s+squall ×p99/);
  const etcd1 = text.split('\n').find((l) => /^\s+1\s+etcd/.test(l))!;
  t.match(etcd1, /10\.00×\s+0\.25×/, 'squall/etcd ops and p99 ratios at concurrency 1');
  const etcd64 = text.split('\n').find((l) => /^\s+64\s+etcd/.test(l))!;
  t.match(etcd64, /10\.00×\s+0\.50×/);
  t.match(text, /n\/a: test/);
  t.match(text, /etcd: etcd durability/);
  t.notMatch(text, /redis: redis durability\n.*redis: redis durability/, 'each guarantee listed once');
});

t.test('no ratio columns when the baseline is not in the run; batches get their own table', async (t) => {
  const text = formatTables([row('etcd', 1, 100, 8), row('etcd', 1, 5000, 30, { batch: 100 })], 'squall');
  t.notMatch(text, /×ops/);
  t.match(text, /== put 1 KiB \(/);
  t.match(text, /== put 1 KiB, batches of 100/);
});

t.test('table columns align, numbers to the right', async (t) => {
  t.equal(table(['a', 'bb'], [['x', '1'], ['yyy', '100']]), 'a    bb\n---  ---\nx      1\nyyy  100');
});

t.test('the machine line states cores and load before and during', async (t) => {
  const m = machineInfo();
  t.ok(m.cores >= 1);
  const text = formatMachine(m, [{ load_1m: 1 }, { load_1m: 3 }, { load_1m: 2 }]);
  t.match(text, new RegExp(`${m.cores} cores`));
  t.match(text, /load average before: [\d.]+ [\d.]+ [\d.]+/);
  t.match(text, /during: median 2\.00, max 3\.00/);
});
