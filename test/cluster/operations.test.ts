import t from 'tap';
import { isSquallError } from '../../src/api/errors.js';
import { eventually, startTestCluster } from '../fixtures/cluster.js';

/**
 * Multi-process clusters on 127.0.0.1: every operation through every member (members forward what they
 * do not order), and reads at a version and at a time give the same bytes on every replica.
 */
for (const [nodes, shards, replicas] of [
  [3, 2, 3],
  [5, 3, 3],
] as const) {
  t.test(`${nodes} members, ${shards} shards of ${replicas} replicas: operations through every member`, async (t) => {
    const { clients } = await startTestCluster(t, nodes, shards, replicas);
    const ids = [...clients.keys()];
    const via = (i: number) => clients.get(ids[i % ids.length]!)!;
    await eventually(() => via(0).createPool('/c', { type: 'persistent' }));
    await eventually(() => via(1).getPool('/c'));
    const writes = [];
    for (let i = 0; i < 24; i++) writes.push(await eventually(() => via(i).put(`/c/k${i % 8}`, `value-${i}`)));
    const del = await via(3).delete('/c/k7');
    // every member answers every key, current and at past versions and times
    for (const id of ids) {
      const c = clients.get(id)!;
      for (let k = 0; k < 7; k++) {
        const last = writes.filter((w) => w.key === `/c/k${k}`).at(-1)!;
        t.equal((await c.get(`/c/k${k}`)).version, last.version, `member ${id} reads /c/k${k} current`);
      }
      t.ok(await c.get('/c/k7').then(() => false, (e) => isSquallError(e, 'deleted')), `member ${id} sees the delete`);
      const h = await c.history('/c/k0');
      t.same(h.versions.map((v) => v.version), writes.filter((w) => w.key === '/c/k0').map((w) => w.version), `member ${id} history`);
      const keys = [];
      for await (const k of c.listAll('/c', { limit: 3 })) keys.push(k.key);
      t.same(keys, ['/c/k0', '/c/k1', '/c/k2', '/c/k3', '/c/k4', '/c/k5', '/c/k6'], `member ${id} lists the keys`);
    }
    // the same bytes at a version and at a time from every member
    const probe = writes[9]!;
    const atTime = probe.timestamp_us;
    const answers = await Promise.all(
      ids.map(async (id) => {
        const c = clients.get(id)!;
        const byVersion = await c.get(probe.key, { version: probe.version });
        const byTime = await c.get(probe.key, { at: atTime });
        const cut = await c.list('/c', { at: atTime, values: true });
        return JSON.stringify([byVersion.value.toString('base64'), byVersion.version, byTime.value.toString('base64'), byTime.version, cut.keys]);
      }),
    );
    t.equal(new Set(answers).size, 1, 'every member gives the same answers at a version and at a time');
    t.equal((await via(0).get('/c/k7', { version: del.version - 1 })).value.toString(), 'value-23', 'history before the delete');
    const batch = await via(2).batch([
      { op: 'put', key: '/c/b1', value: 'x' },
      { op: 'put', key: '/c/b2', value: 'y' },
      { op: 'get', key: '/c/b1' },
      { op: 'get', key: '/c/missing' },
    ]);
    t.same(batch.map((r) => r.status), [200, 200, 200, 404], 'a batch across shards through one member');
    const info = await via(0).cluster();
    t.equal(info.members.filter((m) => m.status === 'up').length, nodes, 'every member up');
    t.ok(info.subgroups.find((s) => s.type === 'persistent')!.shards.every((s) => s.members.length === replicas), 'shards fully replicated');
  });
}
