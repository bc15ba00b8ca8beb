import t, { type Test } from 'tap';
import { ProcCluster, type MemberEvent } from '../../scripts/proc-cluster.js';

/**
 * Every member process started at the same instant, so every pair dials each other at once. The driver
 * must settle on one connection per pair without a flap: every member's first installed view is view 0
 * with all members, each member sees exactly one linkUp per peer and no linkDown, and nothing changes
 * while the group then idles (no suspicion, no view change, no member stopping in a "minority").
 */

// A generous failure timeout (5 s), longer than the idle period: a suspicion here can only come from a
// link event, never from a slow, oversubscribed machine.
const heartbeatPeriodMs = 100;
const suspectAfterMissedHeartbeats = 50;
const idleMs = 3000;

async function simultaneousStart(t: Test, n: number): Promise<void> {
  const cluster = await ProcCluster.create(n, { heartbeatPeriodMs, suspectAfterMissedHeartbeats });
  t.teardown(() => cluster.close());
  const all = cluster.ids();
  for (const id of all) cluster.spawn(id);
  await cluster.waitFor('every member in one view with all members', 60_000, () => cluster.agreedView(all, all) !== undefined);
  await new Promise((r) => setTimeout(r, idleMs));

  for (const id of all) {
    const events = cluster.members.get(id)!.events;
    const of = (ev: string): MemberEvent[] => events.filter((e) => e.ev === ev);
    const views = of('view').map((e) => ({ vid: e.vid, members: [...(e.members as number[])].sort((a, b) => a - b) }));
    t.same(views[0], { vid: 0, members: all }, `member ${id}: the first installed view is view 0 with all members`);
    t.same(
      views.filter((v) => v.vid !== 0),
      [],
      `member ${id}: no view change while idling`,
    );
    t.same(of('stopped'), [], `member ${id}: never stopped`);
    t.same(of('linkDown'), [], `member ${id}: no link reported down`);
    const ups = of('linkUp')
      .map((e) => e.peer as number)
      .sort((a, b) => a - b);
    t.same(
      ups,
      all.filter((p) => p !== id),
      `member ${id}: exactly one linkUp per peer`,
    );
    t.notOk(cluster.members.get(id)!.exited, `member ${id}: still running`);
  }
}

t.test('3 member processes started at once: one link per pair, view 0, no flap', (t) => simultaneousStart(t, 3));
t.test('5 member processes started at once: one link per pair, view 0, no flap', (t) => simultaneousStart(t, 5));
