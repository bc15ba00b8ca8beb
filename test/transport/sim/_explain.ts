import { checkRun } from './checker.js';
import { paramsForSeed, SimCluster } from './cluster.js';
const seed = Number(process.argv[2]);
const shard = Number(process.argv[3] ?? 0);
const c = new SimCluster(paramsForSeed(seed, {}));
await c.run();
console.log(c.failures, checkRun(c));
const views = new Map<number, { members: readonly number[]; shards: readonly (readonly number[])[]; at: number; who: string[] }>();
for (const t of c.traces) for (const v of t.views) {
  const e = views.get(v.vid) ?? { members: v.members, shards: v.shards, at: v.atUs, who: [] };
  e.who.push(t.key);
  views.set(v.vid, e);
}
for (const [vid, v] of [...views].sort((a, b) => a[0] - b[0])) {
  console.log(`view ${vid} @${(v.at / 1e6).toFixed(3)} members [${v.members}] shard${shard}=[${v.shards[shard]}] installed by ${v.who.join(' ')}`);
}
for (const l of c.faultLog) console.log(l);
const name = `persistent/0/${shard}`;
console.log('frontier', c.persistedFrontier.get(name), 'snapshot size', c.persistedSnapshot.get(name)?.length);
for (const n of c.nodes.values()) {
  const log = n.proc?.store.logs.get(name) ?? [];
  console.log(n.id, n.proc?.trace.key, 'log', log.length, 'first', log[0]?.v, log[0]?.id, 'last', log.at(-1)?.v, 'durable', n.durable.logs.get(name)?.length, 'active', n.proc?.member.shard(name).active);
}
for (const n of c.nodes.values()) {
  const p = n.proc;
  if (!p) continue;
  for (const s of p.member.shards) console.log(p.trace.key, s.name, 'active', s.active, 'view', s.view, 'members', s.members, 'frontiers', JSON.stringify(s.frontiers));
}
for (const n of c.nodes.values()) if (n.proc) console.log(n.proc.trace.key, JSON.stringify(n.proc.member.describe()));
