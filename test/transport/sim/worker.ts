import { parseArgs } from 'node:util';
import { describe, runSeed } from './campaign.js';

/** Runs a range of seeds and prints one JSON line per seed (used by the campaign tests' child processes). */
const { values } = parseArgs({ options: { from: { type: 'string' }, count: { type: 'string' } } });
const from = Number(values.from);
const count = Number(values.count);
for (let seed = from; seed < from + count; seed++) {
  const r = await runSeed(seed);
  process.stdout.write(`${JSON.stringify({ seed, summary: describe(r), failures: r.failures, views: r.views, delivered: r.delivered })}\n`);
}
