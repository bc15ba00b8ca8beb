import { paramsForSeed, SimCluster } from './cluster.js';
const [seed, shard, lo, hi] = process.argv.slice(2).map(Number) as [number, number, number, number];
const c = new SimCluster(paramsForSeed(seed));
await c.run();
const name = `persistent/0/${shard}`;
for (const n of c.nodes.values()) {
  const log = n.proc?.store.logs.get(name) ?? [];
  console.log(n.proc?.trace.key, 'store', log.filter((e) => e.v >= lo && e.v <= hi).map((e) => `${e.v}:${e.id}`).join(' '));
}
for (const t of c.traces) for (const [k, list] of t.delivered) if (k.endsWith(`/${shard}`)) {
  const sel = list.filter((d) => d.v >= lo && d.v <= hi);
  if (sel.length) console.log(t.key, 'delivered', k, sel.map((d) => `${d.v}:${d.id}:${d.kind}`).join(' '));
}
