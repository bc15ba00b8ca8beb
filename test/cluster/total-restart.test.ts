import t from 'tap';
import { eventually, startTestCluster } from '../fixtures/cluster.js';
import { stream, verify, type Acked } from '../fixtures/durability.js';

t.test('total restart: SIGKILL every member, restart all, every acknowledged persisted write is there', async (t) => {
  const tc = await startTestCluster(t, 3, 2, 3);
  await eventually(() => tc.clients.get(1)!.createPool('/d', { type: 'persistent' }));
  for (const c of tc.clients.values()) await eventually(() => c.getPool('/d'));
  const acked: Acked[] = [];
  const refused: string[] = [];
  let stop = false;
  const writers = stream(tc, 2, () => stop, acked, refused);
  await new Promise((r) => setTimeout(r, 2000));
  await tc.cluster.killAll(); // mid-stream
  stop = true;
  await writers;
  t.ok(acked.length > 20, `${acked.length} writes acknowledged before the kill`);
  await tc.cluster.startAll();
  await tc.cluster.waitReady(90_000);
  await verify(t, tc, acked, refused, 'after total restart');
  const after = await eventually(() => tc.clients.get(2)!.put('/d/after-restart', 'ok'));
  t.ok(after.version > Math.max(...acked.map((a) => a.version)) || after.shard !== undefined, 'writes are accepted after the restart');
});
