import t from 'tap';
import { shardOf } from '../../src/api/shard-hash.js';
import { eventually, startTestCluster } from '../fixtures/cluster.js';

/**
 * Reads "as of t" are one consistent cut across shards: a writer sets key A then key B (on different
 * shards) to the same counter, over and over; a listing of the pool at any past time never shows B's new
 * value without A's (B ≤ A ≤ B + 1), on any member.
 */
t.test('keys?at=T&values=true is one consistent cut across shards', async (t) => {
  const { clients } = await startTestCluster(t, 3, 2, 3);
  const ids = [...clients.keys()];
  const first = clients.get(ids[0]!)!;
  await eventually(() => first.createPool('/cut', { type: 'persistent' }));
  for (const c of clients.values()) await eventually(() => c.getPool('/cut'));
  // two keys on different shards
  const keys: string[] = [];
  for (let i = 0; keys.length < 2 && i < 1000; i++) {
    const k = `/cut/key${i}`;
    if (keys.length === 0 || shardOf(k, 2, null) !== shardOf(keys[0]!, 2, null)) keys.push(k);
  }
  const [a, b] = keys as [string, string];
  t.not(shardOf(a, 2, null), shardOf(b, 2, null), `${a} and ${b} are on different shards`);
  let stop = false;
  let counter = 0;
  const writer = (async () => {
    while (!stop) {
      counter++;
      await first.put(a, String(counter));
      await first.put(b, String(counter));
    }
  })();
  let checks = 0;
  let violations = 0;
  const deadline = Date.now() + 6000;
  const readers = ids.map(async (id) => {
    const c = clients.get(id)!;
    while (Date.now() < deadline) {
      const at = Date.now() * 1000 - 20_000; // 20 ms ago: stable soon
      const page = await c.list('/cut', { at, values: true });
      const value = (k: string): number => {
        const e = page.keys.find((x) => x.key === k);
        return e?.value ? Number(Buffer.from(e.value, 'base64').toString()) : 0;
      };
      const va = value(a);
      const vb = value(b);
      checks++;
      if (!(vb <= va && va <= vb + 1)) {
        violations++;
        if (violations <= 3) t.fail(`member ${id} at ${at}: ${a}=${va}, ${b}=${vb}`);
      }
    }
  });
  await Promise.all(readers);
  stop = true;
  await writer;
  t.ok(counter > 20, `${counter} rounds written`);
  t.ok(checks > 20, `${checks} cuts read`);
  t.equal(violations, 0, 'no cut shows B ahead of A');
});
