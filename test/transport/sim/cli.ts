import { parseArgs } from 'node:util';
import { describe, runSeed } from './campaign.js';

/**
 * `npm run sim -- --seed N [--verbose] [--explain]` replays one simulated seed exactly (same faults, same
 * schedule); `--from A --count N` runs a range. --verbose prints faults and view installs as they happen
 * (SIM_LOG=info|debug adds the members' own logs); --explain prints views, processes and final states.
 */
const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    from: { type: 'string' },
    count: { type: 'string', default: '1' },
    verbose: { type: 'boolean', default: false },
    explain: { type: 'boolean', default: false },
    'no-faults': { type: 'boolean', default: false },
  },
});
const from = Number(values.seed ?? values.from ?? 1);
const count = values.seed !== undefined ? 1 : Number(values.count);
let failed = 0;
for (let seed = from; seed < from + count; seed++) {
  const started = performance.now();
  const r = await runSeed(seed, { verbose: values.verbose, faults: !values['no-faults'] }, values.explain);
  const ms = (performance.now() - started).toFixed(0);
  if (r.failures.length === 0) {
    process.stdout.write(`ok   ${describe(r)} (${ms} ms)\n`);
  } else {
    failed++;
    process.stdout.write(`FAIL ${describe(r)} (${ms} ms)\n`);
    for (const f of r.failures) process.stdout.write(`  - ${f}\n`);
    if (values.verbose) for (const line of r.faultLog) process.stdout.write(`    ${line}\n`);
  }
  if (r.explanation) process.stdout.write(`${r.explanation}\n`);
}
process.exitCode = failed > 0 ? 1 : 0;
