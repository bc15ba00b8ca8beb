import { assert } from '../assert.js';
import type { SubgroupConfig } from './config.js';
import type { MemberAddress } from './driver.js';
import { computeLayout, type ShardLayout } from './layout.js';
import { VIEW_MAX } from './version.js';

/**
 * Views: numbered membership epochs. A view lists its members in rank order (rank = index; joiners are
 * appended at the end) and carries its layout. Views are plain data: they travel in control messages,
 * are saved by the persist layer, and are recomputed identically on every member from the previous
 * view and a committed change.
 *
 * Invariants: view ids strictly increase (≤ VIEW_MAX, so versions stay exact in a JS number); a member
 * appears at most once; nextView is a pure function of (config, previous view, change).
 */

/** A member of a view. incarnation identifies the process (0: not known, for the initial members). */
export interface MemberInfo extends MemberAddress {
  readonly incarnation: number;
}

export interface View {
  readonly vid: number;
  readonly members: readonly MemberInfo[];
  readonly shards: readonly ShardLayout[];
  /**
   * Per shard: the members to ask for its state. The shard's members of the previous view that are still
   * here; if none is, the last members it had (they left, but hold the history in their logs and serve
   * it from there when asked), so a shard whose every replica left is never restarted empty: it waits
   * for one of them. Only the last generation counts (an older holder may lack later history).
   */
  readonly holders: readonly (readonly number[])[];
}


/** A membership change agreed for the next view. */
export interface MembershipChange {
  /** Member ids leaving (failed or suspected). */
  readonly removes: readonly number[];
  /** Members joining, appended in this order. */
  readonly joins: readonly MemberInfo[];
}

export function initialView(subgroups: readonly SubgroupConfig[], members: readonly MemberAddress[]): View {
  const infos = members.map((m) => ({ id: m.id, host: m.host, port: m.port, incarnation: 0 }));
  const shards = computeLayout(subgroups, infos.map((m) => m.id), null);
  return { vid: 0, members: infos, shards, holders: shards.map((s) => s.members) };
}

/** The holders of each shard in a view that follows `prev` with these shards and members. */
export function holdersAfter(prev: View, members: readonly MemberInfo[], shards: readonly ShardLayout[]): number[][] {
  const here = new Set(members.map((m) => m.id));
  return shards.map((_, k) => {
    const before = prev.shards[k]!.members;
    const stayed = before.filter((id) => here.has(id));
    if (stayed.length > 0) return stayed;
    return before.length > 0 ? [...before] : [...(prev.holders[k] ?? [])];
  });
}

/** The view that follows `view` once `change` is committed. */
export function nextView(subgroups: readonly SubgroupConfig[], view: View, change: MembershipChange, vid = view.vid + 1): View {
  assert(vid > view.vid && vid <= VIEW_MAX, `next view id ${vid} after ${view.vid}`);
  const removed = new Set(change.removes);
  const kept = view.members.filter((m) => !removed.has(m.id));
  for (const j of change.joins) assert(!kept.some((m) => m.id === j.id), `joiner ${j.id} already in view ${view.vid}`);
  const members = [...kept, ...change.joins];
  const shards = computeLayout(subgroups, members.map((m) => m.id), view.shards);
  return { vid, members, shards, holders: holdersAfter(view, members, shards) };
}

export function rankOf(view: View, id: number): number {
  return view.members.findIndex((m) => m.id === id);
}

/** The shards of `view` that `id` is a member of. */
export function shardsOf(view: View, id: number): ShardLayout[] {
  return view.shards.filter((s) => s.members.includes(id));
}
