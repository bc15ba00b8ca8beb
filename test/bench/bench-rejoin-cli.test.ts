import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parseRejoinOptions, type RejoinRow } from '../../bench/rejoin.js';
import { runScript as node } from './run-script.js';

t.test('rejoin options: sizes, value size, chunk override', async (t) => {
  const o = parseRejoinOptions(['--mib', '1,3', '--value-size', '4KiB', '--chunk', '64KiB', '--runs', '2']);
  t.same(o.mib, [1, 3]);
  t.equal(o.valueBytes, 4096);
  t.equal(o.chunkBytes, 65536);
  t.equal(o.runs, 2);
  t.equal(parseRejoinOptions([]).chunkBytes, undefined, 'the group default unless asked');
});

t.test('bench rejoin: a restarted member catches up through chunked transfers and the bench reports it', async (t) => {
  const json = join(t.testdir(), 'rejoin.json');
  const r = await node('bench/main.ts', ['rejoin', '--mib', '2', '--value-size', '4KiB', '--chunk', '64KiB', '--timeout-s', '120', '--json', json], 170_000);
  t.match(r.stdout, /npm run bench -- rejoin --mib 2/);
  t.match(r.stdout, /catch-up s/);
  t.match(r.stdout, /delivered probe/);
  const rows = JSON.parse(readFileSync(json, 'utf8')) as RejoinRow[];
  t.equal(rows.length, 1);
  const row = rows[0]!;
  t.equal(row.caught_up, true, 'member 3 caught up');
  t.equal(row.transfers, 4, 'registry, two persistent shards and the volatile one');
  t.ok(row.bytes > 2 * 1024 * 1024, `the missed 2 MiB moved (${row.bytes} bytes)`);
  t.ok(row.chunks > 20, `in chunks of 64 KiB (${row.chunks})`);
  // the view that admitted it, at least (a loaded machine may add a view after a false suspicion)
  for (const d of ['delivered', 'persisted'] as const) {
    const p = row.probe[d];
    t.ok(p.puts >= 1 && p.failures === 0, `the ${d} probe wrote during the catch-up (${p.puts} puts, slowest ${Math.round(p.max_ms)} ms)`);
  }
  t.ok(row.views_installed.length === 2 && row.views_installed.every((v) => v >= 1), `views installed by members 1 and 2: ${row.views_installed.join(', ')}`);
});
