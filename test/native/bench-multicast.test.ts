import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { runScript } from '../bench/run-script.js';
import { addonReady } from './fixtures/harness.js';

/**
 * `npm run bench -- multicast --transport tcp,fabric` runs both drivers in one invocation: one row per
 * transport with the issue-3 fields plus transport/provider, and the ratio to the TCP driver.
 */
if (addonReady(t)) {
  t.test('the multicast bench runs the TCP driver and the fabric driver in one invocation', async (t) => {
    const json = join(t.testdir(), 'multicast.json');
    const { stdout } = await runScript(
      'bench/main.ts',
      ['multicast', '--members', '3', '--senders', 'all', '--size', '1KiB', '--seconds', '1', '--warmup', '0.5', '--transport', 'tcp,fabric', '--provider', 'shm', '--json', json],
      100_000,
    );
    const rows = JSON.parse(readFileSync(json, 'utf8')) as Array<Record<string, unknown>>;
    t.same(
      rows.map((r) => [r.transport, r.provider]),
      [
        ['tcp', null],
        ['fabric', 'shm'],
      ],
      'one row per transport, in the order asked',
    );
    for (const r of rows) {
      t.same(
        [r.members, r.senders, r.size_bytes],
        [3, 'all', 1024],
        `${String(r.transport)}: same members, senders and size`,
      );
      t.ok((r.delivered_msgs_per_s as number) > 0 && (r.delivered_gb_per_s as number) > 0, `${String(r.transport)}: delivered ${String(r.delivered_msgs_per_s)} msgs/s`);
      for (const k of ['latency_p50_us', 'latency_p99_us', 'loopback_gb_per_s', 'cpu_pct_per_member', 'view_changes', 'load_1m']) t.type(r[k], 'number', `${String(r.transport)}: ${k}`);
    }
    t.equal(rows[0]!.vs_tcp, null, 'no ratio for the TCP row');
    t.equal(rows[1]!.vs_tcp, Number(((rows[1]!.delivered_gb_per_s as number) / (rows[0]!.delivered_gb_per_s as number)).toFixed(2)), 'fabric row: GB/s over the TCP row');
    t.match(stdout, /transport\s+msgs\/s\s+GB\/s\s+p50 µs\s+p99 µs.*×tcp/, 'the table');
    t.match(stdout, /^fabric shm\s/m, 'a fabric shm line');
    t.match(stdout, /loopback TCP .*GB\/s/, 'the loopback reference');
  });
}
