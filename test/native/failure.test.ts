import t from 'tap';
import { addonReady, startGroup, TEST_PROVIDERS, TEST_SHM_PREFIX } from './fixtures/harness.js';

if (addonReady(t)) {
  for (const provider of TEST_PROVIDERS) {
    t.test(`a peer that dies mid-write is detected by its writers (${provider}, 3 processes, liveness check off)`, async (t) => {
      // Members 0 and 2 stream messages (and heartbeat rows) to everyone; member 1 is SIGKILLed while
      // receiving. With the co-located liveness check off, only the write path can notice.
      const g = await startGroup(t, {
        n: 3,
        config: { provider, shmPrefix: TEST_SHM_PREFIX, livenessCheckMs: 0, writeTimeoutMs: 1000 },
        scenario: { kind: 'stream', senders: [0, 2], victim: 1, payloadBytes: 1000, capacityBytes: 256 * 1024, reportAfter: 2000, heartbeatMs: 20 },
      });
      await g.waitFor(1, 'received');
      await g.kill(1);
      for (const rank of [0, 2]) {
        const r = await g.members[rank]!.result;
        const failures = r.failures as Record<number, string>;
        t.ok(failures[1], `member ${rank} reported member 1 failed: ${failures[1]}`);
        t.match(failures[1], /write|posted|completed/, `member ${rank}: detected on the write path`);
        t.notOk(failures[rank === 0 ? 2 : 0], `member ${rank} did not suspect the other survivor`);
        t.ok((r.sent as number) > 0, `member ${rank} was sending`);
      }
      await g.stop();
    });

    t.test(`a co-located peer that dies is detected without any write to it (${provider}, 3 processes)`, async (t) => {
      // Nobody streams; heartbeats are far apart, so the liveness check of co-located processes reports it.
      const g = await startGroup(t, {
        n: 3,
        config: { provider, shmPrefix: TEST_SHM_PREFIX, livenessCheckMs: 50 },
        scenario: { kind: 'stream', senders: [], victim: 1, payloadBytes: 100, capacityBytes: 4096, reportAfter: 0, heartbeatMs: 60_000 },
      });
      await g.waitFor(1, 'received');
      await g.kill(1);
      for (const rank of [0, 2]) {
        const r = await g.members[rank]!.result;
        const failures = r.failures as Record<number, string>;
        t.match(failures[1], /process exited/, `member ${rank}: member 1 reported by the liveness check`);
      }
      await g.stop();
    });
  }

  // libfabric's shm locks live in the endpoints' /dev/shm files and do not survive their holder: a process
  // killed while progressing (holding its own lock) or while writing (holding the target's) wedges everyone
  // who next needs that lock. The watchdog releases such locks once the holder is dead.
  t.test('a member killed holding its own shm lock does not wedge the members writing to it', async (t) => {
    const g = await startGroup(t, {
      n: 3,
      config: { provider: 'shm', shmPrefix: TEST_SHM_PREFIX, livenessCheckMs: 0, writeTimeoutMs: 3000 },
      scenario: { kind: 'stream', senders: [0, 2], victim: 1, payloadBytes: 1000, capacityBytes: 256 * 1024, reportAfter: 2000, heartbeatMs: 20, holdLock: 'own' },
    });
    await g.waitFor(1, 'locked');
    await g.kill(1);
    let released = 0;
    for (const rank of [0, 2]) {
      const r = await g.members[rank]!.result;
      const failures = r.failures as Record<number, string>;
      t.match(failures[1], /write|posted|completed/, `member ${rank}: member 1 detected on the write path`);
      t.notOk(failures[rank === 0 ? 2 : 0], `member ${rank} did not suspect the other survivor`);
      released += r.shmLocksReleased as number;
    }
    t.ok(released >= 1, `the dead member's lock was released (${released} releases)`);
    await g.stop();
  });

  t.test("a member killed holding another member's shm lock does not wedge it", async (t) => {
    const g = await startGroup(t, {
      n: 3,
      config: { provider: 'shm', shmPrefix: TEST_SHM_PREFIX, livenessCheckMs: 0, writeTimeoutMs: 3000 },
      scenario: { kind: 'stream', senders: [0, 2], victim: 1, payloadBytes: 1000, capacityBytes: 256 * 1024, reportAfter: 2000, heartbeatMs: 20, holdLock: 0 },
    });
    await g.waitFor(1, 'locked');
    await g.kill(1);
    for (const rank of [0, 2]) {
      const r = await g.members[rank]!.result;
      const failures = r.failures as Record<number, string>;
      t.match(failures[1], /write|posted|completed/, `member ${rank}: member 1 detected on the write path`);
      t.notOk(failures[rank === 0 ? 2 : 0], `member ${rank} did not suspect the other survivor`);
      if (rank === 0) t.ok((r.shmLocksReleased as number) >= 1, 'member 0 released its own lock, left held by the dead member');
    }
    await g.stop();
  });
}
