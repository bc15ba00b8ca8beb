import { runSeed } from './campaign.js';
const from = Number(process.argv[2] ?? 1), count = Number(process.argv[3] ?? 20);
const t0 = performance.now();
let events = 0, fails = 0;
for (let s = from; s < from + count; s++) { const r = await runSeed(s); events += r.events; if (r.failures.length) { fails++; console.log('FAIL', s, r.failures[0]); } }
const ms = performance.now() - t0;
console.log(`${count} seeds in ${(ms / 1000).toFixed(1)} s, ${(ms / count).toFixed(0)} ms/seed, ${(events / count).toFixed(0)} events/seed, ${(1000 * ms / events).toFixed(1)} us/event, fails ${fails}`);
