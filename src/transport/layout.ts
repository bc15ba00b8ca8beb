import { assert } from '../assert.js';
import type { SubgroupConfig } from './config.js';

/**
 * The deterministic layout: which members of a view form each shard of each subgroup. Every member
 * computes it independently from (config, the view's members in rank order, the previous view's layout),
 * so it must depend on nothing else.
 *
 * Invariants:
 * - same inputs, same output (no iteration over unordered collections, no randomness);
 * - a member that was in a shard in the previous view and is still in the view stays in that shard
 *   (minimal reassignment); reserved members present in the view are in their reserved shards;
 * - a non-reserved member is in at most one shard across all subgroups;
 * - shards are first filled up to their minimum, round-robin, then up to `replicas`, taking unassigned
 *   members in rank order; members left over are unassigned (spares that fill in after failures);
 * - a shard still below its minimum then takes the highest-ranked non-reserved member of the largest
 *   shard that is above its own minimum (so failures never leave one shard empty while another has
 *   spare replicas);
 * - a shard with fewer than minReplicas members is not provisioned and orders nothing in that view;
 * - shards of an 'overlap' subgroup ignore all of the above but the first two: each keeps its previous
 *   members still in the view, then takes members in rank order starting at an offset that spreads the
 *   shards over the view (shard j starts at rank j * members / shards), up to `replicas`;
 * - each shard's member list is in view rank order (its index is the member's sender rank).
 */

export interface ShardLayout {
  /** Index over all shards of all subgroups, in config order. */
  readonly index: number;
  /** "type/subgroup/shard", where subgroup counts subgroups of the same type. */
  readonly name: string;
  readonly type: string;
  readonly subgroup: number;
  readonly shard: number;
  /** Member ids in view rank order. */
  readonly members: readonly number[];
  readonly minReplicas: number;
  readonly provisioned: boolean;
}

/** The shards of a configuration, without members (names and indexes are the same in every view). */
export function shardNames(subgroups: readonly SubgroupConfig[]): string[] {
  const names: string[] = [];
  const perType = new Map<string, number>();
  for (const s of subgroups) {
    const sub = perType.get(s.type) ?? 0;
    perType.set(s.type, sub + 1);
    for (let j = 0; j < s.shards; j++) names.push(`${s.type}/${sub}/${j}`);
  }
  return names;
}

export function computeLayout(
  subgroups: readonly SubgroupConfig[],
  memberIds: readonly number[],
  previous: readonly ShardLayout[] | null,
): ShardLayout[] {
  const rank = new Map<number, number>();
  memberIds.forEach((id, r) => rank.set(id, r));
  assert(rank.size === memberIds.length, `duplicate member in view: ${memberIds.join(',')}`);

  interface Draft {
    type: string;
    subgroup: number;
    shard: number;
    min: number;
    max: number;
    members: number[];
    overlap: boolean;
  }
  const drafts: Draft[] = [];
  const perType = new Map<string, number>();
  for (const s of subgroups) {
    const sub = perType.get(s.type) ?? 0;
    perType.set(s.type, sub + 1);
    for (let j = 0; j < s.shards; j++) {
      drafts.push({ type: s.type, subgroup: sub, shard: j, min: s.minReplicas ?? 1, max: s.replicas, members: [], overlap: s.placement === 'overlap' });
    }
  }
  // Overlapping shards: previous members that are still here, then members from a per-shard offset.
  {
    let base = 0;
    for (const s of subgroups) {
      if (s.placement === 'overlap') {
        for (let j = 0; j < s.shards; j++) {
          const d = drafts[base + j]!;
          for (const id of s.reserved?.[j] ?? []) if (rank.has(id) && !d.members.includes(id)) d.members.push(id);
          for (const id of previous?.[base + j]?.members ?? []) if (rank.has(id) && !d.members.includes(id) && d.members.length < d.max) d.members.push(id);
          const offset = Math.floor((j * memberIds.length) / s.shards);
          for (let k = 0; k < memberIds.length && d.members.length < d.max; k++) {
            const id = memberIds[(offset + k) % memberIds.length]!;
            if (!d.members.includes(id)) d.members.push(id);
          }
        }
      }
      base += s.shards;
    }
  }
  if (previous) assert(previous.length === drafts.length, 'previous layout has a different shard count');

  // Disjoint shards. Reserved members first (they may be pinned in shards of several subgroups).
  const assigned = new Set<number>();
  let base = 0;
  for (const s of subgroups) {
    if (s.placement !== 'overlap') s.reserved?.forEach((ids, j) => {
      for (const id of ids) {
        if (rank.has(id) && !drafts[base + j]!.members.includes(id)) {
          drafts[base + j]!.members.push(id);
          assigned.add(id);
        }
      }
    });
    base += s.shards;
  }
  // Then survivors of the previous view keep their place.
  if (previous) {
    previous.forEach((p, g) => {
      const d = drafts[g]!;
      if (d.overlap) return;
      for (const id of p.members) {
        if (rank.has(id) && !assigned.has(id) && d.members.length < d.max) {
          d.members.push(id);
          assigned.add(id);
        }
      }
    });
  }
  // Fill round-robin from the unassigned members in rank order: minimums first, then up to replicas.
  const spare = memberIds.filter((id) => !assigned.has(id));
  let next = 0;
  for (const target of ['min', 'max'] as const) {
    let progress = true;
    while (progress && next < spare.length) {
      progress = false;
      for (const d of drafts) {
        if (next >= spare.length) break;
        if (!d.overlap && d.members.length < d[target]) {
          d.members.push(spare[next++]!);
          progress = true;
        }
      }
    }
  }
  // Rebalance: shards below their minimum take members from shards above theirs.
  const reserved = new Set<number>();
  for (const s of subgroups) s.reserved?.forEach((ids) => ids.forEach((id) => reserved.add(id)));
  for (let guard = 0; guard < memberIds.length; guard++) {
    const needy = drafts.find((d) => !d.overlap && d.members.length < d.min);
    if (!needy) break;
    let donor: Draft | null = null;
    for (const d of drafts) {
      if (d.overlap) continue;
      const movable = d.members.filter((id) => !reserved.has(id));
      if (d.members.length > d.min && movable.length > 0 && (!donor || d.members.length > donor.members.length)) donor = d;
    }
    if (!donor) break;
    const movable = donor.members.filter((id) => !reserved.has(id));
    const moved = movable.reduce((a, b) => (rank.get(a)! > rank.get(b)! ? a : b));
    donor.members.splice(donor.members.indexOf(moved), 1);
    needy.members.push(moved);
  }
  const names = shardNames(subgroups);
  return drafts.map((d, index) => {
    const members = [...d.members].sort((a, b) => rank.get(a)! - rank.get(b)!);
    return {
      index,
      name: names[index]!,
      type: d.type,
      subgroup: d.subgroup,
      shard: d.shard,
      members,
      minReplicas: d.min,
      provisioned: members.length >= d.min,
    };
  });
}
