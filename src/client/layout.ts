import type { ClusterInfo, PoolInfo } from '../api/index.js';

/**
 * The cluster layout as the client routes by it, read from GET /v1/cluster (API.md "Cluster"): the live
 * members with their HTTP origins, and for each subgroup (`<type>/<subgroup>`, as pools name theirs) the
 * member ids of each shard. Checked field by field: a layout the client cannot read is no layout (requests
 * then go to the seeds, which forward), never a crash in the routing code.
 */
export interface ClusterLayout {
  view: number;
  /** Members not reported down, by id, with their origins. */
  members: Map<number, string>;
  /** `<type>/<subgroup>` → per shard index, the ids of its live members in id order. */
  groups: Map<string, number[][]>;
}

/** The name of a pool's subgroup in ClusterLayout.groups. */
export function groupOf(pool: Pick<PoolInfo, 'type' | 'subgroup'>): string {
  return `${pool.type}/${pool.subgroup}`;
}

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function originOf(http: unknown): string | null {
  if (typeof http !== 'string') return null;
  try {
    const url = new URL(http);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : null;
  } catch {
    return null;
  }
}

/** The layout in a /v1/cluster answer, or a sentence saying why it cannot be read. */
export function readLayout(body: unknown): ClusterLayout | string {
  const info = body as Partial<ClusterInfo> | null;
  if (typeof info !== 'object' || info === null) return 'the answer is not a JSON object';
  if (!Array.isArray(info.members)) return 'the answer has no members array';
  if (!Array.isArray(info.subgroups)) return 'the answer has no subgroups array';
  const members = new Map<number, string>();
  for (const m of info.members) {
    if (!isCount(m?.id)) return `a member has no valid id: ${JSON.stringify(m)?.slice(0, 200)}`;
    const origin = originOf(m.http);
    if (origin === null) return `member ${m.id} has no valid http URL: ${JSON.stringify(m.http)?.slice(0, 200)}`;
    if (m.status !== 'down') members.set(m.id, origin);
  }
  const groups = new Map<string, number[][]>();
  const perType = new Map<string, number>();
  for (const sg of info.subgroups) {
    if (typeof sg?.type !== 'string' || !Array.isArray(sg.shards)) return `a subgroup has no type or shards: ${JSON.stringify(sg)?.slice(0, 200)}`;
    // API.md's subgroup object may omit its index: then it is its rank among the subgroups of its type.
    const rank = perType.get(sg.type) ?? 0;
    perType.set(sg.type, rank + 1);
    const subgroup = isCount(sg.subgroup) ? sg.subgroup : rank;
    const shards: number[][] = [];
    for (let i = 0; i < sg.shards.length; i++) {
      const shard = sg.shards[i];
      if (!Array.isArray(shard?.members)) return `shard ${i} of ${sg.type}/${subgroup} has no members array`;
      const index = isCount(shard.shard) ? shard.shard : i;
      shards[index] = shard.members.filter((id): id is number => isCount(id) && members.has(id)).sort((a, b) => a - b);
    }
    for (let i = 0; i < shards.length; i++) shards[i] ??= [];
    groups.set(`${sg.type}/${subgroup}`, shards);
  }
  return { view: isCount(info.view) ? info.view : 0, members, groups };
}
