import t from 'tap';
import { eventually, startTestCluster } from '../fixtures/cluster.js';
import { stream, verify, type Acked } from '../fixtures/durability.js';

/**
 * Durability under failure: clients stream `persisted` puts through the members while members are SIGKILLed
 * and later restarted; afterwards every acknowledged write reads back with its version, timestamp and bytes
 * from every member, and no write refused as not applied (view_change) shows up.
 */
{
  const nodes = 5;
  const kills = 2;
  t.test(`${nodes} members: acknowledged persisted writes survive SIGKILL of ${kills} member(s) and their restart`, async (t) => {
    // state-transfer chunks of 16 KiB: a restarted member catches up through several
    const tc = await startTestCluster(t, nodes, 2, 3, { group: { stateChunkBytes: 16 * 1024 } });
    await eventually(() => tc.clients.get(1)!.createPool('/d', { type: 'persistent' }));
    for (const c of tc.clients.values()) await eventually(() => c.getPool('/d'));
    const acked: Acked[] = [];
    const refused: string[] = [];
    let stop = false;
    const writers = stream(tc, 2, () => stop, acked, refused);
    const victims = [nodes, nodes - 1].slice(0, kills);
    await new Promise((r) => setTimeout(r, 1500));
    for (const id of victims) {
      await tc.cluster.kill(id);
      const before = acked.length;
      // the survivors install a view without it and go on: wait (bounded) for 20 more acknowledged writes
      const deadline = Date.now() + 30_000;
      while (acked.length < before + 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      t.ok(acked.length >= before + 20, `writes go on after member ${id} was killed (${acked.length - before} more acknowledged)`);
    }
    for (const id of victims) await tc.cluster.start(id);
    await tc.cluster.waitReady(60_000);
    await new Promise((r) => setTimeout(r, 1500));
    stop = true;
    await writers;
    t.ok(acked.length > 50, `${acked.length} writes acknowledged during the run (${refused.length} refused as not applied)`);
    await verify(t, tc, acked, refused, 'after kills and restarts');
  });
}

