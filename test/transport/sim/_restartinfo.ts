import { paramsForSeed, SimCluster } from './cluster.js';
const c = new SimCluster(paramsForSeed(Number(process.argv[2])));
await c.run();
for (const n of c.nodes.values()) {
  const s = await n.durable.transport.loadRestartState();
  console.log(n.id, JSON.stringify({ saved: s?.savedView && { vid: s.savedView.vid, members: s.savedView.members.map((m) => m.id), shards: s.savedView.shards.map((x) => x.members), holders: s.savedView.holders }, trims: s?.trims.map((t) => t.vid), logEnds: s?.logEnds }));
}
