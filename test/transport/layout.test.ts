import t from 'tap';
import { isSquallError } from '../../src/api/errors.js';
import { parseGroupConfig } from '../../src/transport/config.js';
import { computeLayout, shardNames } from '../../src/transport/layout.js';
import { initialView, nextView } from '../../src/transport/view.js';

const sg = (o: Record<string, unknown>) => parseGroupConfig({ members: [{ id: 1, host: 'h', port: 1 }], layout: { subgroups: [o] } }).layout.subgroups;

t.test('names: type/subgroup-of-that-type/shard', async (t) => {
  const subgroups = parseGroupConfig({
    members: [{ id: 1, host: 'h', port: 1 }],
    layout: { subgroups: [{ type: 'persistent', shards: 2, replicas: 1 }, { type: 'volatile', shards: 1, replicas: 1 }, { type: 'persistent', shards: 1, replicas: 1 }] },
  }).layout.subgroups;
  t.same(shardNames(subgroups), ['persistent/0/0', 'persistent/0/1', 'volatile/0/0', 'persistent/1/0']);
});

t.test('deterministic fill: minimums round-robin first, then replicas; spares left over', async (t) => {
  const subgroups = sg({ type: 'persistent', shards: 2, replicas: 2, minReplicas: 1 });
  const a = computeLayout(subgroups, [5, 3, 9, 1, 7], null);
  const b = computeLayout(subgroups, [5, 3, 9, 1, 7], null);
  t.same(a, b, 'same inputs, same layout');
  t.same(a.map((s) => s.members), [[5, 9], [3, 1]], 'members in rank order per shard');
  t.ok(a.every((s) => s.provisioned));
});

t.test('survivors keep their shard; a shard below its minimum takes a member from a shard above its own', async (t) => {
  const subgroups = sg({ type: 'persistent', shards: 2, replicas: 3, minReplicas: 1 });
  const v0 = computeLayout(subgroups, [1, 2, 3, 4, 5, 6], null);
  t.same(v0.map((s) => s.members), [[1, 3, 5], [2, 4, 6]]);
  const v1 = computeLayout(subgroups, [1, 3, 5, 6], v0);
  t.same(v1.map((s) => s.members), [[1, 3, 5], [6]], 'survivors stay in place');
  const v2 = computeLayout(subgroups, [1, 3, 5], v1);
  t.same(v2.map((s) => s.members), [[1, 3], [5]], 'the emptied shard takes the highest-ranked member of the fullest shard');
  const lonely = computeLayout(sg({ type: 'persistent', shards: 3, replicas: 1, minReplicas: 1 }), [1, 2], null);
  t.same(lonely.map((s) => s.provisioned), [true, true, false], 'a shard below its minimum is not provisioned');
});

t.test('reserved members are pinned to their shard', async (t) => {
  const subgroups = sg({ type: 'persistent', shards: 2, replicas: 2, reserved: [[9], [1]] });
  const l = computeLayout(subgroups, [1, 2, 3, 9], null);
  t.ok(l[0]!.members.includes(9) && l[1]!.members.includes(1));
});

t.test('views: joins appended, removals dropped, holders track who has each shard', async (t) => {
  const config = parseGroupConfig({
    members: [1, 2, 3].map((id) => ({ id, host: '127.0.0.1', port: 1000 + id })),
    layout: { subgroups: [{ type: 'persistent', shards: 1, replicas: 1 }] },
  });
  const v0 = initialView(config.layout.subgroups, config.members);
  t.same(v0.shards[0]!.members, [1]);
  const v1 = nextView(config.layout.subgroups, v0, { removes: [1], joins: [{ id: 4, host: 'h', port: 4, incarnation: 7 }] });
  t.same(v1.members.map((m) => m.id), [2, 3, 4]);
  t.same(v1.shards[0]!.members, [2], 'a spare fills the shard');
  t.same(v1.holders[0], [1], 'its state is with the member that left');
  const v2 = nextView(config.layout.subgroups, v1, { removes: [], joins: [] });
  t.same(v2.holders[0], [2], 'once it stayed a view, the new member holds it');
});

t.test('config: defaults, and clear errors naming the field', async (t) => {
  const c = parseGroupConfig({ members: [{ id: 1, host: 'h', port: 1 }], layout: { subgroups: [{ type: 'persistent', shards: 1, replicas: 1 }] } });
  t.equal(c.heartbeatPeriodMs, 100);
  t.equal(c.majorityRule, true);
  t.equal(c.restartLeaderId, 1);
  const bad = (input: unknown, re: RegExp) => {
    try {
      parseGroupConfig(input);
      t.fail('accepted');
    } catch (e) {
      t.ok(isSquallError(e, 'bad_parameter') && re.test((e as Error).message), (e as Error).message);
    }
  };
  bad({ members: [], layout: { subgroups: [] } }, /members/);
  bad({ members: [{ id: 1, host: 'h', port: 1 }, { id: 1, host: 'h', port: 2 }], layout: { subgroups: [{ type: 'p', shards: 1, replicas: 1 }] } }, /duplicate member id 1/);
  bad({ members: [{ id: 1, host: 'h', port: 1 }], layout: { subgroups: [{ type: 'p', shards: 1, replicas: 2, minReplicas: 3 }] } }, /minReplicas/);
  bad({ members: [{ id: 1, host: 'h', port: 1 }], layout: { subgroups: [{ type: 'p', shards: 1, replicas: 1 }] }, batchBytesMax: 1024, inlinePayloadBytesMax: 4096 }, /inlinePayloadBytesMax/);
  bad({ members: [{ id: 1, host: 'h', port: 1 }], layout: { subgroups: [{ type: 'p', shards: 1, replicas: 1 }] }, heartbeatPeriodMs: 0 }, /heartbeatPeriodMs/);
  bad({ members: [{ id: 1, host: 'h', port: 1 }], layout: { subgroups: [{ type: 'p', shards: 1, replicas: 1 }] }, bogus: 1 }, /bogus|unrecognized/i);
});

t.test('overlap placement: every shard takes replicas from the whole view, spread, survivors keep their place', async (t) => {
  const subgroups = [
    { type: 'metadata', shards: 1, replicas: 5, placement: 'overlap' as const },
    { type: 'persistent', shards: 2, replicas: 3, placement: 'overlap' as const },
  ];
  const l0 = computeLayout(subgroups, [1, 2, 3], null);
  t.same(l0.map((s) => s.members), [[1, 2, 3], [1, 2, 3], [1, 2, 3]], 'three members: every shard has all of them');
  const l1 = computeLayout(subgroups, [1, 2, 3, 4, 5], null);
  t.same(l1[0]!.members, [1, 2, 3, 4, 5]);
  t.same(l1[1]!.members, [1, 2, 3], 'shard 0 starts at rank 0');
  t.same(l1[2]!.members, [3, 4, 5], 'shard 1 starts at rank 2 (5 * 1 / 2)');
  const l2 = computeLayout(subgroups, [1, 2, 4, 5], l1);
  t.same(l2[1]!.members, [1, 2, 4], 'survivors 1 and 2 stay, one more joins');
  t.same(l2[2]!.members, [4, 5, 1].sort(), 'survivors 4 and 5 stay');
  t.same(computeLayout(subgroups, [1, 2, 4, 5], l1), l2, 'deterministic');
});
