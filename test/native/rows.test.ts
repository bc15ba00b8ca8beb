import t from 'tap';
import { addonReady, startGroup, TEST_PROVIDERS, TEST_SHM_PREFIX } from './fixtures/harness.js';

// Three processes each update their own row 3000 times (pushing it whole to the others after every update);
// every row a reader accepts must be internally consistent, and everyone must end on everyone's last row.
if (addonReady(t)) {
  for (const provider of TEST_PROVIDERS) {
    t.test(`row writes become visible, never torn (${provider}, 3 processes)`, async (t) => {
      const updates = 3000;
      const g = await startGroup(t, {
        n: 3,
        config: { provider, shmPrefix: TEST_SHM_PREFIX },
        scenario: { kind: 'rows', payloadBytes: 240, updates },
      });
      const results = await Promise.all(g.members.map((m) => m.result));
      t.comment(JSON.stringify(results.map((r) => ({ ms: r.elapsedMs, good: r.goodReads, torn: r.tornReads, st: r.stats }))));
      for (const [rank, r] of results.entries()) {
        t.equal(r.badReads, 0, `member ${rank}: no accepted row was inconsistent`);
        t.ok((r.goodReads as number) > 0, `member ${rank}: read rows`);
        const seen = r.seen as Record<string, number>;
        for (const peer of [0, 1, 2].filter((p) => p !== rank)) {
          t.equal(seen[peer], updates, `member ${rank} saw member ${peer}'s last row`);
        }
      }
      await g.stop();
    });
  }
}
