import type { SimCluster } from './cluster.js';

/** A human-readable account of a finished run: views per process, faults, each live member's state. */
export function explain(c: SimCluster): string {
  const lines: string[] = [];
  const views = new Map<number, { members: readonly number[]; shards: readonly (readonly number[])[]; atUs: number; who: string[] }>();
  for (const t of c.traces) {
    for (const v of t.views) {
      const e = views.get(v.vid) ?? { members: v.members, shards: v.shards, atUs: v.atUs, who: [] };
      e.who.push(t.key);
      views.set(v.vid, e);
    }
  }
  lines.push('views (first install time, members, shard members, installed by):');
  for (const [vid, v] of [...views].sort((a, b) => a[0] - b[0])) {
    lines.push(`  ${vid} @${(v.atUs / 1e6).toFixed(3)}s [${v.members.join(',')}] shards ${v.shards.map((s) => `[${s.join(',')}]`).join(' ')} by ${v.who.join(' ')}`);
  }
  lines.push('processes (views installed, times they left the group):');
  for (const t of c.traces) lines.push(`  ${t.key}: ${t.views.map((v) => v.vid).join(' ')}${t.stops.length ? ` left at ${t.stops.map((s) => (s / 1e6).toFixed(3)).join(',')}` : ''}`);
  lines.push('faults:');
  for (const l of c.faultLog) lines.push(`  ${l}`);
  lines.push('live members at the end (shard logs: entries, last version):');
  for (const n of c.nodes.values()) {
    const p = n.proc;
    if (!p) continue;
    const logs = [...p.store.logs].map(([name, l]) => `${name}: ${l.length} ${l[l.length - 1]?.v ?? -1}`).join(', ');
    lines.push(`  ${p.trace.key} ${logs}`);
    lines.push(`    ${JSON.stringify(p.member.describe())}`);
  }
  lines.push(`persisted frontiers: ${JSON.stringify(Object.fromEntries(c.persistedFrontier))}`);
  return lines.join('\n');
}
