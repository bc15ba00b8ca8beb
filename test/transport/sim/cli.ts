import { parseArgs } from 'node:util';
import { describe, runSeed } from './campaign.js';

/**
 * `npm run sim -- --seed N [--verbose]` replays one simulated seed exactly (same faults, same schedule);
 * `--from A --count N` runs a range. SIM_LOG=debug with --verbose also prints the members' logs.
 */
const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    from: { type: 'string' },
    count: { type: 'string', default: '1' },
    verbose: { type: 'boolean', default: false },
    'no-faults': { type: 'boolean', default: false },
  },
});
const from = Number(values.seed ?? values.from ?? 1);
const count = values.seed !== undefined ? 1 : Number(values.count);
let failed = 0;
for (let seed = from; seed < from + count; seed++) {
  const started = performance.now();
  const r = await runSeed(seed, { verbose: values.verbose, faults: !values['no-faults'] });
  const ms = (performance.now() - started).toFixed(0);
  if (r.failures.length === 0) {
    process.stdout.write(`ok   ${describe(r)} (${ms} ms)\n`);
  } else {
    failed++;
    process.stdout.write(`FAIL ${describe(r)} (${ms} ms)\n`);
    for (const f of r.failures) process.stdout.write(`  - ${f}\n`);
    if (values.verbose) for (const line of r.faultLog) process.stdout.write(`    ${line}\n`);
  }
}
process.exitCode = failed > 0 ? 1 : 0;
