import type { DeliveryRecord, ProcessTrace, SimCluster } from './cluster.js';

/**
 * The properties every simulated run must keep, checked on the trace after the run. Each returns
 * human-readable failures (empty when the property holds).
 *
 * - total order and virtual synchrony: in each view, for each shard, what any member delivered is a
 *   prefix of what every survivor of that view delivered (survivors: installed the next view from it);
 *   so survivors delivered the same sequence, and whatever a member saw delivered before it crashed
 *   is delivered by every survivor;
 * - stability: a payload delivered in normal operation (not by a ragged trim) had been received by
 *   every member of its shard in that view before it was delivered anywhere;
 * - versions strictly increase along each process's deliveries of a shard (and the store checks
 *   versions and timestamps along its log);
 * - one history: a version always carries the same payload, a payload gets one version;
 * - durability: everything at or below the highest persisted frontier ever reported is in the log of
 *   every member of the final view for that shard;
 * (liveness is checked by the run itself.)
 */

const TWO_32 = 2 ** 32;

function survivorsOf(traces: readonly ProcessTrace[], vid: number): Set<string> {
  const out = new Set<string>();
  for (const t of traces) {
    for (let i = 0; i + 1 < t.views.length; i++) {
      const a = t.views[i]!;
      const b = t.views[i + 1]!;
      if (a.vid !== vid || b.vid !== vid + 1) continue;
      if (t.stops.some((s) => s > a.atUs && s <= b.atUs)) continue;
      out.add(t.key);
    }
  }
  return out;
}

function isPrefix(a: readonly DeliveryRecord[], b: readonly DeliveryRecord[]): number {
  if (a.length > b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i]!.v !== b[i]!.v || a[i]!.id !== b[i]!.id) return i;
  return -1;
}

export function checkRun(c: SimCluster): string[] {
  const failures: string[] = [];
  const fail = (m: string): void => {
    if (failures.length < 20) failures.push(m);
  };
  const traces = c.traces;
  const vids = new Set<number>();
  for (const t of traces) for (const v of t.views) vids.add(v.vid);

  // Who was which member in each view.
  const procInView = new Map<string, ProcessTrace>();
  for (const t of traces) for (const v of t.views) procInView.set(`${v.vid}/${t.id}`, t);

  for (const vid of [...vids].sort((a, b) => a - b)) {
    const survivors = survivorsOf(traces, vid);
    const installers = traces.filter((t) => t.views.some((v) => v.vid === vid));
    const layout = installers[0]!.views.find((v) => v.vid === vid)!;
    for (let k = 0; k < layout.shards.length; k++) {
      const members = layout.shards[k]!;
      const inShard = installers.filter((t) => t.views.find((v) => v.vid === vid)!.myShards.includes(k));
      const lists = new Map(inShard.map((t) => [t.key, t.delivered.get(`${vid}/${k}`) ?? []]));
      // Total order + virtual synchrony.
      for (const s of inShard.filter((t) => survivors.has(t.key))) {
        const ls = lists.get(s.key)!;
        for (const p of inShard) {
          const lp = lists.get(p.key)!;
          const at = isPrefix(lp, ls);
          if (at >= 0) {
            fail(
              `view ${vid} shard ${k}: ${p.key} delivered ${lp.length} (${lp.slice(at, at + 3).map((d) => d.id).join(',')} at ${at}) ` +
                `which is not a prefix of survivor ${s.key}'s ${ls.length} (${ls.slice(at, at + 3).map((d) => d.id).join(',')})`,
            );
          }
        }
      }
      // Stability: normal deliveries were received by every shard member first.
      const S = members.length;
      for (const p of inShard) {
        for (const d of lists.get(p.key)!) {
          if (d.kind !== 'stable') continue;
          const seq = d.v - vid * TWO_32;
          const r = seq % S;
          const index = (seq - r) / S;
          for (const m of members) {
            const q = procInView.get(`${vid}/${m}`);
            const recv = q?.received.get(`${vid}/${k}/${r}`) ?? [];
            // Last receipt at or before the delivery (times are increasing): binary search.
            let lo = 0;
            let hi = recv.length;
            while (lo < hi) {
              const mid = (lo + hi) >> 1;
              if (recv[mid]![0] <= d.atUs) lo = mid + 1;
              else hi = mid;
            }
            const count = lo > 0 ? recv[lo - 1]![1] : 0;
            if (count <= index) {
              fail(`view ${vid} shard ${k}: ${p.key} delivered ${d.id} (seq ${seq}) before member ${m} (${q?.key ?? 'never installed'}) received it`);
              break;
            }
          }
        }
      }
    }
  }

  // Versions strictly increase per process and shard (across views).
  for (const t of traces) {
    const last = new Map<number, number>();
    for (const [key, list] of [...t.delivered].sort((x, y) => Number(x[0].split('/')[0]) - Number(y[0].split('/')[0]))) {
      const shard = Number(key.split('/')[1]);
      for (const d of list) {
        if (d.v <= (last.get(shard) ?? -1)) fail(`${t.key}: shard ${shard} delivered version ${d.v} after ${last.get(shard)}`);
        last.set(shard, d.v);
      }
    }
  }

  // One history per shard: a version has one payload, a payload one version.
  const names = c.config.layout.subgroups.flatMap((s) => Array.from({ length: s.shards }, (_, j) => `${s.type}/0/${j}`));
  const byVersion = names.map(() => new Map<number, string>());
  const byId = names.map(() => new Map<string, number>());
  const record = (k: number, v: number, id: string, where: string): void => {
    const had = byVersion[k]!.get(v);
    if (had !== undefined && had !== id) fail(`shard ${k}: version ${v} is ${had} in one history and ${id} at ${where}`);
    byVersion[k]!.set(v, id);
    const hadV = byId[k]!.get(id);
    if (hadV !== undefined && hadV !== v) fail(`shard ${k}: payload ${id} delivered at versions ${hadV} and ${v} (${where})`);
    byId[k]!.set(id, v);
  };
  for (const t of traces) for (const [key, list] of t.delivered) for (const d of list) record(Number(key.split('/')[1]), d.v, d.id, t.key);
  for (const node of c.nodes.values()) {
    const proc = node.proc;
    if (!proc) continue;
    names.forEach((name, k) => {
      const log = proc.store.logs.get(name) ?? [];
      for (const e of log) record(k, e.v, e.id, `${proc.trace.key} store`);
      const ids = new Set<string>();
      for (const e of log) {
        if (ids.has(e.id)) fail(`${proc.trace.key}: ${name} holds payload ${e.id} twice`);
        ids.add(e.id);
      }
    });
  }

  // Durability: the highest persisted frontier's history is in every final member's log.
  for (const node of c.nodes.values()) {
    const proc = node.proc;
    if (!proc) continue;
    for (const shard of proc.member.shards) {
      if (!shard.active) continue;
      const snapshot = c.persistedSnapshot.get(shard.name) ?? [];
      const log = new Map((proc.store.logs.get(shard.name) ?? []).map((e) => [e.v, e.id]));
      for (const [v, id] of snapshot) {
        if (log.get(v) !== id) {
          fail(`${proc.trace.key}: ${shard.name} lost ${id} (version ${v}) at or below the persisted frontier ${c.persistedFrontier.get(shard.name)}`);
          break;
        }
      }
    }
  }
  return failures;
}
