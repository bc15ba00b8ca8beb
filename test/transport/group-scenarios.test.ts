import t from 'tap';
import { isSquallError } from '../../src/api/errors.js';
import { checkRun } from './fixtures/sim/checker.js';
import { paramsForSeed, SimCluster, type SimParams } from './fixtures/sim/cluster.js';

/**
 * Scripted scenarios on the deterministic simulator (no random faults): each exercises one protocol
 * path on purpose and then runs the same property checks as the campaign.
 */

const S = 1_000_000; // µs per simulated second

function cluster(members: number, extra: Partial<SimParams> = {}): SimCluster {
  return new SimCluster(paramsForSeed(7, { members, spares: 0, shards: 1, replicas: members, faults: false, workload: false, ...extra }));
}

async function formed(c: SimCluster, ids: number[], limitUs: number): Promise<number> {
  const want = [...ids].sort((a, b) => a - b).join();
  const ok = await c.drive(limitUs, () =>
    ids.every((id) => {
      const m = c.member(id);
      return m?.mode === 'active' && [...m.view!.members.map((x) => x.id)].sort((a, b) => a - b).join() === want && m.shards.some((s) => s.active);
    }),
  );
  if (!ok) throw new Error(`members ${ids.join(',')} did not form one view by ${limitUs / S} s`);
  return c.member(ids[0]!)!.view!.vid;
}

function logIds(c: SimCluster, id: number): string[] {
  return (c.store(id)!.logs.get('persistent/0/0') ?? []).map((e) => e.id);
}

t.test('a member paused longer than the failure timeout is removed cleanly, then rejoins', async (t) => {
  const c = cluster(3);
  c.startInitial();
  await formed(c, [1, 2, 3], 2 * S);
  for (const id of [1, 2, 3]) c.sendFrom(id, 20);
  await c.drive(c.sched.nowUs + 0.2 * S);
  c.pause(3, 2000); // timeout is 10 × 50 ms
  const removed = await c.drive(c.sched.nowUs + 1.5 * S, () => {
    const v = c.member(1)!.view!;
    return v.members.length === 2 && !v.members.some((m) => m.id === 3);
  });
  t.ok(removed, 'the others install a view without the paused member');
  for (const id of [1, 2]) c.sendFrom(id, 20);
  await formed(c, [1, 2, 3], c.sched.nowUs + 10 * S);
  const stops = c.traces.find((tr) => tr.key === '3.1')!.stops;
  t.ok(stops.length >= 1, 'the paused member noticed it was removed and left the view (no crash)');
  t.same(c.failures, [], 'no member failed an invariant');
  await c.drive(c.sched.nowUs + 1 * S);
  t.same(logIds(c, 3), logIds(c, 1), 'after rejoining it holds the same history as the others');
  t.same(checkRun(c), []);
});

t.test('a member starved for less than the failure timeout is not suspected', async (t) => {
  const c = cluster(3);
  c.startInitial();
  const vid = await formed(c, [1, 2, 3], 2 * S);
  for (let i = 0; i < 10; i++) {
    c.pause(2, 300); // below the 500 ms timeout, repeatedly
    await c.drive(c.sched.nowUs + 0.4 * S);
  }
  t.equal(c.member(1)!.view!.vid, vid, 'no view change');
  t.same(c.failures, []);
});

t.test('total restart: every member crashes; the group restarts from saved views and logs, losing nothing persisted', async (t) => {
  const c = cluster(4, { shards: 2, replicas: 2 });
  c.startInitial();
  await formed(c, [1, 2, 3, 4], 2 * S);
  for (let round = 0; round < 5; round++) {
    for (const id of [1, 2, 3, 4]) c.sendFrom(id, 10);
    await c.drive(c.sched.nowUs + 0.1 * S);
  }
  await c.drive(c.sched.nowUs + 0.5 * S); // persistence settles
  const before = new Map([1, 2, 3, 4].map((id) => [id, c.store(id)!.logs]));
  t.ok([...before.values()].some((logs) => [...logs.values()].some((l) => l.length > 0)), 'something was delivered');
  for (const id of [1, 2, 3, 4]) c.crashNode(id);
  await c.drive(c.sched.nowUs + 0.5 * S);
  for (const id of [1, 2, 3, 4]) c.startNode(id);
  const vid = await formed(c, [1, 2, 3, 4], c.sched.nowUs + 10 * S);
  t.ok(vid > 0, `restart view ${vid} installed`);
  for (const id of [1, 2, 3, 4]) c.sendFrom(id, 5);
  await c.drive(c.sched.nowUs + 1 * S);
  t.same(c.failures, []);
  t.same(checkRun(c), [], 'one history, and the persisted frontier survived the restart');
});

t.test('total restart: a copy reaching beyond the history the restart agreed on is replaced, not kept', async (t) => {
  const c = cluster(3);
  c.startInitial();
  await formed(c, [1, 2, 3], 2 * S);
  for (let round = 0; round < 3; round++) {
    for (const id of [1, 2, 3]) c.sendFrom(id, 10);
    await c.drive(c.sched.nowUs + 0.1 * S);
  }
  await c.drive(c.sched.nowUs + 0.5 * S);
  c.crashNode(3);
  await formed(c, [1, 2], c.sched.nowUs + 5 * S); // the newest view leaves member 3 out
  for (const id of [1, 2]) c.sendFrom(id, 5);
  await c.drive(c.sched.nowUs + 0.5 * S);
  c.crashNode(1);
  c.crashNode(2);
  // member 3's saved copy ends with an entry nobody else holds (as if only it had delivered it before
  // everyone stopped): the restart's history comes from members 1 and 2, so that entry must go
  const durable3 = c.nodes.get(3)!.durable;
  const log3 = durable3.logs.get('persistent/0/0')!;
  const log1 = c.nodes.get(1)!.durable.logs.get('persistent/0/0')!;
  const stray = { ...log1[log1.length - 1]!, v: log1[log1.length - 1]!.v + 1, id: 'stray' };
  durable3.logs.set('persistent/0/0', [...log3, stray]);
  for (const id of [1, 2, 3]) c.startNode(id); // member 3 takes part in the restart
  await formed(c, [1, 2, 3], c.sched.nowUs + 10 * S);
  for (const id of [1, 2, 3]) c.sendFrom(id, 5);
  await c.drive(c.sched.nowUs + 1 * S);
  t.notOk(logIds(c, 3).includes('stray'), 'the stray entry is gone from member 3');
  t.same(logIds(c, 3), logIds(c, 1), 'member 3 holds the same history as member 1');
  t.same(c.failures, []);
  t.same(checkRun(c), [], 'one history on every member');
});

t.test('majority rule: a 2-member group stops a partitioned member unless majorityRule is off', async (t) => {
  for (const majorityRule of [true, false]) {
    const c = cluster(2, { config: { majorityRule } });
    c.startInitial();
    await formed(c, [1, 2], 2 * S);
    c.net.block(1, 2);
    await c.drive(c.sched.nowUs + 1.5 * S);
    const stopped = [1, 2].filter((id) => c.traces.find((tr) => tr.key === `${id}.1`)!.stops.length > 0);
    if (majorityRule) t.same(stopped, [1, 2], 'with the majority rule both sides see a minority and stop');
    else {
      t.same(stopped, [], 'without it (test groups only) each side continues alone');
      t.equal(c.member(1)!.view!.members.length, 1);
    }
    c.net.unblock(1, 2);
  }
});

t.test('P2P request/reply, timeouts, and a clear error when the target leaves the view', async (t) => {
  const c = cluster(3);
  c.startInitial();
  await formed(c, [1, 2, 3], 2 * S);
  c.member(2)!.onRequest((from, payload) => Buffer.from(`${from} asked ${Buffer.from(payload).toString()}`));
  c.member(3)!.onRequest(() => new Promise(() => {})); // never answers
  const ok = c.member(1)!.request(2, Buffer.from('hello'));
  const slow = c.member(1)!.request(3, Buffer.from('x'), 200);
  await c.drive(c.sched.nowUs + 0.5 * S);
  t.equal(Buffer.from(await ok).toString(), '1 asked hello');
  t.ok(isSquallError(await slow.catch((e: unknown) => e), 'unavailable'), 'a request without an answer times out');
  const lost = c.member(1)!.request(3, Buffer.from('y'), 60_000);
  let settled = false;
  lost.catch(() => {}).finally(() => (settled = true));
  c.crashNode(3);
  await c.drive(c.sched.nowUs + 2 * S, () => settled);
  t.ok(isSquallError(await lost.catch((e: unknown) => e), 'view_change'), 'the target left: view_change error');
  await c.drive(c.sched.nowUs + 2 * S, () => c.member(1)!.view!.members.length === 2);
  const late = await c.member(1)!.request(3, Buffer.from('z')).catch((e: unknown) => e);
  t.ok(isSquallError(late, 'view_change'), 'no request to a member outside the view');
});

t.test('joins are batched into one view', async (t) => {
  const c = cluster(3, { spares: 3, replicas: 6, config: { joinBatchMs: 100 } });
  c.startInitial();
  const first = await formed(c, [1, 2, 3], 2 * S);
  for (const id of [4, 5, 6]) c.startNode(id);
  const vid = await formed(c, [1, 2, 3, 4, 5, 6], c.sched.nowUs + 5 * S);
  t.equal(vid, first + 1, 'the three joiners arrived in a single view change');
  for (const id of [1, 4]) c.sendFrom(id, 10);
  await c.drive(c.sched.nowUs + 1 * S);
  t.same(logIds(c, 6), logIds(c, 1), 'joiners got the state and the new traffic');
  t.same(checkRun(c), []);
});

t.test('a member that leaves on purpose is removed; the sequence space rolls over into a fresh view', async (t) => {
  const c = cluster(3, { config: { seqRolloverAt: 1024, windowPayloads: 512 } });
  c.startInitial();
  const vid = await formed(c, [1, 2, 3], 2 * S);
  for (let i = 0; i < 30; i++) {
    for (const id of [1, 2, 3]) c.sendFrom(id, 40);
    await c.drive(c.sched.nowUs + 0.05 * S);
  }
  await c.drive(c.sched.nowUs + 1 * S);
  const after = c.member(1)!.view!;
  t.ok(after.vid > vid && after.members.length === 3, `rolled over into view ${after.vid} with the same members`);
  t.equal(logIds(c, 2).length, 3 * 30 * 40, 'every payload delivered exactly once across the rollover');
  c.member(3)!.leave();
  const left = await c.drive(c.sched.nowUs + 2 * S, () => c.member(1)!.view!.members.length === 2);
  t.ok(left, 'the leaving member is removed in the next view');
  t.same(c.failures, []);
});

t.test('the shard keeps delivering while a rejoining member installs its state', async (t) => {
  // 1 KiB chunks (the simulator's default) and a long missed history: the transfer takes many round trips.
  const c = cluster(3);
  c.startInitial();
  await formed(c, [1, 2, 3], 2 * S);
  c.crashNode(3);
  await c.drive(c.sched.nowUs + 3 * S, () => c.member(1)!.view!.members.length === 2);
  for (let i = 0; i < 40; i++) {
    c.sendFrom(1, 25);
    c.sendFrom(2, 25);
    await c.drive(c.sched.nowUs + 0.02 * S);
  }
  await c.drive(c.sched.nowUs + 0.5 * S);
  const missed = logIds(c, 1).length;
  t.ok(missed >= 1500, `history while member 3 was down: ${missed} payloads`);

  const { chunks, completed } = c.transfers;
  c.startNode(3);
  const transferring = await c.drive(c.sched.nowUs + 10 * S, () => c.transfers.chunks >= chunks + 2 && c.transfers.completed === completed);
  t.ok(transferring, `member 3 is installing its state (${c.transfers.chunks - chunks} chunks so far)`);
  const before = logIds(c, 1).length;
  t.equal(c.sendFrom(1, 20), 20);
  const delivered = await c.drive(c.sched.nowUs + 5 * S, () => logIds(c, 1).length >= before + 20 && logIds(c, 2).length >= before + 20);
  t.ok(delivered, 'members 1 and 2 delivered the new payloads');
  t.equal(c.transfers.completed, completed, `...while member 3's transfer was still running (${c.transfers.chunks - chunks} chunks so far)`);

  await c.drive(c.sched.nowUs + 10 * S, () => c.transfers.completed > completed);
  await c.drive(c.sched.nowUs + 1 * S);
  t.same(logIds(c, 3), logIds(c, 1), 'then member 3 holds the same history, the payloads sent during its transfer included');
  t.ok(c.transfers.producedDuringInstall > 0, `the donor produced later chunks while member 3 installed earlier ones (${c.transfers.producedDuringInstall} times)`);
  t.same(c.failures, []);
  t.same(checkRun(c), []);
});

t.test('total restart with the leader cut off after it chose its restart view: one membership per view id', async (t) => {
  // The path of seeds 6230 and 4119 at 17d2eb3 (two views with one id, fixed in 5ab6013). This script takes
  // that path, but whether the leader's second restart attempt comes before a live member answers depends on
  // timer order, so it checks the property rather than reproducing that interleaving.
  const c = cluster(5);
  c.startInitial();
  await formed(c, [1, 2, 3, 4, 5], 2 * S);
  for (const id of [1, 2, 3, 4, 5]) c.crashNode(id);
  await c.drive(c.sched.nowUs + 0.5 * S);
  // member 1 leads the restart and hears only 2 and 4: a quorum of the last view, not all of it, so it
  // waits restartGraceMs before installing its restart view
  c.net.block(1, 3);
  c.net.block(1, 5);
  for (const id of [1, 2, 3, 4, 5]) c.startNode(id);
  await c.drive(c.sched.nowUs + 0.2 * S);
  // then it loses 2 and 4 as well: its restart view reaches them only later, and it is alone
  c.net.block(1, 2);
  c.net.block(1, 4);
  const installed = await c.drive(c.sched.nowUs + 2 * S, () => (c.member(1)?.view?.vid ?? -1) >= 1);
  t.ok(installed, `member 1 installed restart view ${c.member(1)?.view?.vid}`);
  await c.drive(c.sched.nowUs + 1 * S); // it finds itself in a minority and stops
  c.net.healAll();
  await formed(c, [1, 2, 3, 4, 5], c.sched.nowUs + 10 * S);
  const byVid = new Map<number, Set<string>>();
  for (const trace of c.traces) {
    for (const v of trace.views) {
      const set = byVid.get(v.vid) ?? new Set<string>();
      set.add(v.members.join(','));
      byVid.set(v.vid, set);
    }
  }
  const split = [...byVid].filter(([, memberships]) => memberships.size > 1).map(([vid, m]) => `view ${vid}: ${[...m].map((x) => `[${x}]`).join(' and ')}`);
  t.same(split, [], 'every view id names one membership');
  for (const id of [1, 2, 3, 4, 5]) c.sendFrom(id, 5);
  await c.drive(c.sched.nowUs + 1 * S);
  t.same(c.failures, []);
  t.same(checkRun(c), []);
});
