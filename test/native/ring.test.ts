import { createHash } from 'node:crypto';
import t from 'tap';
import { recordBytes } from '../../src/transport/fabric/message-ring.js';
import { addonReady, startGroup, TEST_PROVIDERS, TEST_SHM_PREFIX } from './fixtures/harness.js';
import { messageBytes, type Sizes } from './fixtures/protocol.js';

function expectedDigest(sender: number, count: number, sizes: Sizes): string {
  const h = createHash('sha256');
  for (let seq = 1; seq <= count; seq++) h.update(messageBytes(sender, seq, sizes));
  return h.digest('hex');
}

if (addonReady(t)) {
  for (const provider of TEST_PROVIDERS) {
    t.test(`rings wrap correctly: small messages, every member sending (${provider}, 3 processes)`, async (t) => {
      // 6000 messages of 0..700 bytes through a 4 KiB ring: it wraps hundreds of times, with pads of every
      // size, and senders block on acks all the time.
      const sizes: Sizes = { randomMax: 700 };
      const count = 6000;
      const capacityBytes = 4096;
      t.ok(recordBytes(700) < capacityBytes / 4, 'several records fit in the ring');
      const g = await startGroup(t, {
        n: 3,
        config: { provider, shmPrefix: TEST_SHM_PREFIX },
        scenario: { kind: 'ring', senders: [0, 1, 2], count, capacityBytes, sizes },
      });
      const results = await Promise.all(g.members.map((m) => m.result));
      for (const [rank, r] of results.entries()) {
        t.equal(r.bad, 0, `member ${rank}: every message had the right seq and bytes`);
        for (const s of [0, 1, 2].filter((x) => x !== rank)) {
          t.equal((r.counts as Record<number, number>)[s], count, `member ${rank} got all of member ${s}'s messages`);
          t.equal((r.digests as Record<number, string>)[s], expectedDigest(s, count, sizes), `member ${rank}: stream of ${s} intact`);
        }
      }
      await g.stop();
    });

    t.test(`large messages arrive whole, in blocks (${provider}, 3 processes)`, async (t) => {
      // Messages up to 5 MiB written in 256 KiB blocks through an 8 MiB ring, mixed with tiny ones.
      const sizes: Sizes = { list: [1 << 20, 5 * (1 << 20) + 3, 0, 3 * (1 << 20) - 5, 7, 2 * (1 << 20) + 1] };
      const count = 12;
      const g = await startGroup(t, {
        n: 3,
        config: { provider, shmPrefix: TEST_SHM_PREFIX, blockSizeBytes: 256 * 1024 },
        scenario: { kind: 'ring', senders: [0, 1], count, capacityBytes: 8 * (1 << 20), sizes },
      });
      const results = await Promise.all(g.members.map((m) => m.result));
      for (const [rank, r] of results.entries()) {
        t.equal(r.bad, 0, `member ${rank}: every message whole and correct`);
        for (const s of [0, 1].filter((x) => x !== rank)) {
          t.equal((r.counts as Record<number, number>)[s], count, `member ${rank} got all ${count} of member ${s}'s messages`);
          t.equal((r.digests as Record<number, string>)[s], expectedDigest(s, count, sizes), `member ${rank}: stream of ${s} intact`);
        }
      }
      await g.stop();
    });
  }
}
