import t from 'tap';
import { runCampaign, seedBase } from './sim/campaign.js';

// Part 7 of 10 of the simulation campaign (50 seeds each; 500 per run). See sim/checker.ts for the
// properties and sim/cluster.ts for the faults. A failing seed replays with: npm run sim -- --seed N
t.test('simulated groups under random faults keep their guarantees', async (t) => {
  await runCampaign(t, seedBase() + 300, 50);
});
