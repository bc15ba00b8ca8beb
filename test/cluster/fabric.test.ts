import t from 'tap';
import { addonReady, TEST_PROVIDERS } from '../native/fixtures/harness.js';
import { eventually, startTestCluster } from '../fixtures/cluster.js';
import { stream, verify, type Acked } from '../fixtures/durability.js';

/**
 * The cluster on the libfabric data plane (cluster file `transport: {kind: fabric}`), per test provider:
 * persisted puts streamed through every member while one member is SIGKILLed and restarted; every
 * acknowledged write reads back from every member afterwards, none refused shows up.
 */
if (addonReady(t)) {
  for (const provider of TEST_PROVIDERS) {
    t.test(`3 members over fabric (${provider}): acknowledged writes survive SIGKILL and restart of a member`, async (t) => {
      const tc = await startTestCluster(t, 3, 2, 3, { transport: { kind: 'fabric', provider } });
      await eventually(() => tc.clients.get(1)!.createPool('/d', { type: 'persistent' }));
      for (const c of tc.clients.values()) await eventually(() => c.getPool('/d'));
      const acked: Acked[] = [];
      const refused: string[] = [];
      let stop = false;
      const writers = stream(tc, 2, () => stop, acked, refused);
      await new Promise((r) => setTimeout(r, 1500));
      await tc.cluster.kill(3);
      const before = acked.length;
      const deadline = Date.now() + 30_000;
      while (acked.length < before + 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      t.ok(acked.length >= before + 20, `writes go on after member 3 was killed (${acked.length - before} more acknowledged)`);
      await tc.cluster.start(3);
      await tc.cluster.waitReady(60_000);
      await new Promise((r) => setTimeout(r, 1500));
      stop = true;
      await writers;
      t.ok(acked.length > 50, `${acked.length} writes acknowledged (${refused.length} refused as not applied)`);
      await verify(t, tc, acked, refused, `over fabric ${provider}`);
    });
  }
}
