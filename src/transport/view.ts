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
 */

/** A member of a view. incarnation identifies the process (0: not known, for the initial members). */
export interface MemberInfo extends MemberAddress {
  readonly incarnation: number;
}

export interface View {
  readonly vid: number;
  readonly members: readonly MemberInfo[];
  readonly shards: readonly ShardLayout[];
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
  return { vid: 0, members: infos, shards: computeLayout(subgroups, infos.map((m) => m.id), null) };
}

/** The view that follows `view` once `change` is committed. */
export function nextView(subgroups: readonly SubgroupConfig[], view: View, change: MembershipChange, vid = view.vid + 1): View {
  assert(vid > view.vid && vid <= VIEW_MAX, `next view id ${vid} after ${view.vid}`);
  const removed = new Set(change.removes);
  const kept = view.members.filter((m) => !removed.has(m.id));
  for (const j of change.joins) assert(!kept.some((m) => m.id === j.id), `joiner ${j.id} already in view ${view.vid}`);
  const members = [...kept, ...change.joins];
  return { vid, members, shards: computeLayout(subgroups, members.map((m) => m.id), view.shards) };
}

export function rankOf(view: View, id: number): number {
  return view.members.findIndex((m) => m.id === id);
}

/** The shards of `view` that `id` is a member of. */
export function shardsOf(view: View, id: number): ShardLayout[] {
  return view.shards.filter((s) => s.members.includes(id));
}
