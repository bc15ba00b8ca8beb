import t from 'tap';
import { guarantee, keysFor, naRow, planCells, rowFromRuns, unsupported } from '../../bench/kv.js';
import type { RunSample } from '../../bench/closed-loop.js';
import { MemoryTarget, PlainMemoryTarget } from './memory-target.js';

const rowKeys = ['target', 'op', 'size_bytes', 'concurrency', 'batch', 'ops_per_s', 'mb_per_s', 'p50_ms', 'p99_ms', 'durability'];

t.test('the matrix: every op × size × concurrency, batches only for puts', async (t) => {
  const cells = planCells({ ops: ['put', 'get'], sizesBytes: [100, 1024], batches: [1, 100], concurrencies: [1, 64] });
  t.equal(cells.length, 2 * 2 * 2 + 2 * 2);
  t.same(cells.filter((c) => c.op === 'get').map((c) => c.batch), [1, 1, 1, 1]);
  t.same(cells.filter((c) => c.op === 'put' && c.sizeBytes === 100).map((c) => [c.batch, c.concurrency]), [[1, 1], [1, 64], [100, 1], [100, 64]]);
});

t.test('preloaded rows use fewer keys when keys × versions × size exceeds the cap', async (t) => {
  const o = { keys: 1000, versions: 10, preloadBytesMax: 256 * 1024 * 1024 };
  t.equal(keysFor({ op: 'put', sizeBytes: 1048576 }, o), 1000, 'puts are not preloaded');
  t.equal(keysFor({ op: 'get', sizeBytes: 1024 }, o), 1000);
  t.equal(keysFor({ op: 'get', sizeBytes: 1048576 }, o), 256);
  t.equal(keysFor({ op: 'get-past', sizeBytes: 1048576 }, o), 25);
  t.equal(keysFor({ op: 'get-past', sizeBytes: 1024 * 1024 * 1024 }, o), 1, 'at least one key');
});

t.test('rows a target cannot run say why', async (t) => {
  const cell = { op: 'put' as const, sizeBytes: 1024, batch: 1, concurrency: 1 };
  const plain = new PlainMemoryTarget();
  t.equal(unsupported(plain, cell, 10), null);
  t.match(unsupported(plain, { ...cell, op: 'get-past' }, 10), /no reads at a past version/);
  t.match(unsupported(plain, { ...cell, batch: 10 }, 10), /no batch writes/);
  const limited = new MemoryTarget('m', { requestBytesMax: 1024 * 1024, batchEntriesMax: 50 });
  t.equal(unsupported(limited, { ...cell, batch: 50 }, 100), null);
  t.match(unsupported(limited, { ...cell, batch: 51 }, 100), /batch > 50 entries/);
  t.equal(unsupported(limited, { ...cell, sizeBytes: 1023 * 1024 }, 100), null);
  t.match(unsupported(limited, { ...cell, sizeBytes: 1024 * 1024 }, 100), /request > 1 MiB/, 'a value of the whole limit leaves no room for key and framing');
  t.match(unsupported(limited, { ...cell, sizeBytes: 20 * 1024, batch: 50 }, 100), /request > 1 MiB/);
  t.match(unsupported(limited, { ...cell, batch: 20 }, 10), /batch of 20 > 10 keys/);
});

t.test('a row holds the median of each figure over its runs, in the JSON shape', async (t) => {
  const target = new MemoryTarget();
  const samples: RunSample[] = [
    { opsPerS: 100, p50Ms: 1, p99Ms: 9, errors: 0, load1m: 1 },
    { opsPerS: 300, p50Ms: 3, p99Ms: 5, errors: 2, lastError: 'boom', load1m: 3 },
    { opsPerS: 200, p50Ms: 2, p99Ms: 7, errors: 0, load1m: 2 },
  ];
  const row = rowFromRuns(target, { op: 'put', sizeBytes: 1000, batch: 1, concurrency: 16 }, 500, samples);
  for (const k of rowKeys) t.ok(k in row, `has ${k}`);
  t.equal(row.ops_per_s, 200);
  t.equal(row.mb_per_s, 0.2);
  t.equal(row.p50_ms, 2);
  t.equal(row.p99_ms, 7);
  t.equal(row.runs, 3);
  t.equal(row.errors, 2);
  t.equal(row.last_error, 'boom');
  t.equal(row.load_1m, 2);
  t.equal(row.keys, 500);
  t.equal(row.durability, 'memory only');
  const json = JSON.parse(JSON.stringify([row])) as Record<string, unknown>[];
  t.same(Object.keys(json[0]!).slice(0, rowKeys.length), rowKeys, 'JSON rows start with the documented fields in order');
});

t.test('an n/a row has null figures and a note', async (t) => {
  const row = naRow(new PlainMemoryTarget('redis'), { op: 'get-past', sizeBytes: 1024, batch: 1, concurrency: 1 }, 10, 'n/a: no reads at a past version');
  t.same([row.ops_per_s, row.mb_per_s, row.p50_ms, row.p99_ms], [null, null, null, null]);
  t.equal(row.note, 'n/a: no reads at a past version');
  t.equal(row.runs, 0);
});

t.test('rows state write durability or read consistency', async (t) => {
  const target = new MemoryTarget();
  t.equal(guarantee(target, 'put'), 'memory only');
  t.equal(guarantee(target, 'get'), 'local');
  t.equal(guarantee(target, 'get-past'), 'local at a revision');
  t.equal(guarantee(target, 'mixed'), 'memory only; reads: local');
  t.equal(guarantee(new PlainMemoryTarget(), 'get-past'), 'n/a');
});
