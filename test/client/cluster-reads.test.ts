import t from 'tap';
import { SquallClient, type RetryInfo } from '../../src/client/index.js';
import type { Router } from '../../src/client/router.js';
import { eventually, startTestCluster } from '../fixtures/cluster.js';

/**
 * The routed client against a real cluster of 3 member processes (2 shards of 3 replicas), where the review
 * found them: a listing as of a time or a version follows its pages within the first page's cut while keys are
 * written between pages, and a read at a time not yet stable gets the server's 425 after its waitMs even when
 * that is longer than headersTimeoutMs, without a retry and without making any member suspect.
 */
t.test('3 members: listAll as of a time and a version across pages; a read that waits past headersTimeoutMs', async (t) => {
  const tc = await startTestCluster(t, 3, 2, 3);
  const urls = [...tc.cluster.members.values()].map((m) => m.url);
  const retries: RetryInfo[] = [];
  const client = new SquallClient({ urls, headersTimeoutMs: 1000, retryDelayMs: 10, onRetry: (r) => retries.push(r) });
  t.teardown(() => client.close());
  await eventually(() => client.createPool('/c', { type: 'persistent' }));
  for (const c of tc.clients.values()) await eventually(() => c.getPool('/c'));

  const written = [];
  for (let i = 0; i < 8; i++) written.push(await client.put(`/c/k${i}`, 'old'));
  const atUs = Math.max(...written.map((w) => w.timestamp_us));
  const newestByShard = new Map<number, number>();
  for (const w of written) newestByShard.set(w.shard, Math.max(newestByShard.get(w.shard) ?? -1, w.version));
  const version = Math.min(...newestByShard.values());
  const inVersionCut = written.filter((w) => w.version <= version).map((w) => w.key);
  t.ok(inVersionCut.length > 2, `the version cut spans pages (${inVersionCut.length} keys)`);

  let round = 0;
  const listing = async (cut: { at: number } | { version: number }): Promise<string[]> => {
    const keys: string[] = [];
    round++;
    for await (const k of client.listAll('/c', { limit: 2, values: true, ...cut })) {
      keys.push(`${k.key}=${Buffer.from(k.value!, 'base64').toString()}`);
      if (keys.length === 2) {
        // Between the first page and the rest: keys among and after the ones to come, an overwrite, a delete.
        await client.put(`/c/k1-${round}`, 'new');
        await client.put(`/c/k9-${round}`, 'new');
        await client.put('/c/k6', `new-${round}`);
      }
    }
    return keys;
  };
  t.same(await listing({ at: atUs }), written.map((w) => `${w.key}=old`), 'at: the cut of the first page on every page');
  t.same(await listing({ version }), inVersionCut.map((k) => `${k}=old`), 'version: likewise');

  const future = Date.now() * 1000 + 60_000_000;
  await t.rejects(client.get('/c/k0', { at: future, waitMs: 1500 }), { name: 'SquallError', code: 'not_yet_stable', status: 425 });
  t.same(retries, [], 'no request of this test was retried');
  const router = (client as unknown as { router: Router }).router;
  t.equal(router.view !== null, true, 'the client routes by the layout');
  const suspects = router.seeds.filter((e) => e.suspectUntilMs > performance.now()).map((e) => e.origin);
  t.same(suspects, [], 'no member is suspect');
});
