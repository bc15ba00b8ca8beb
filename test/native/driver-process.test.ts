// The fabric driver between real processes: frames flow in order through the data plane, a SIGKILLed
// member's links go down once at each survivor while the survivors keep talking, and the member restarted
// under the same id comes back with a new incarnation and exchanges frames again.
import t from 'tap';
import { DriverGroup, type DriverEvent } from './fixtures/driver-group.js';
import { addonReady, TEST_PROVIDERS, TEST_SHM_PREFIX } from './fixtures/harness.js';

if (addonReady(t)) {
  for (const provider of TEST_PROVIDERS) {
    t.test(`fabric driver across processes: order, SIGKILL, restart (${provider}, 3 members)`, async (t) => {
      const g = new DriverGroup(t, { ids: [1, 2, 3], provider, sizes: { randomMax: 100 * 1024 }, shmPrefix: TEST_SHM_PREFIX, reportEvery: 50 });
      const ids = [1, 2, 3];
      const is = (member: number, kind: DriverEvent['kind'], peer: number, value?: number) => (e: DriverEvent) =>
        e.member === member && e.kind === kind && e.peer === peer && (value === undefined || e.value === value);
      for (const id of ids) g.spawn(id);
      for (const a of ids) for (const b of ids) if (a !== b) await g.waitFor(is(a, 'up', b), `${a} up with ${b}`);
      t.pass('all links up');

      for (const id of ids) g.send(id, 300);
      for (const a of ids) for (const b of ids) if (a !== b) await g.waitFor(is(a, 'received', b, 300), `${a} to get 300 frames of ${b}`);
      t.pass('300 frames (up to 100 KiB, fragmented) between every pair, in order');

      // Member 2 dies while everyone streams.
      for (const id of ids) g.send(id, 2000);
      await g.waitFor(is(2, 'received', 1, 50), '2 receiving');
      const oldIncarnation = g.incarnation(2);
      await g.kill(2);
      for (const s of [1, 3]) await g.waitFor(is(s, 'down', 2), `${s} to see 2 down`);
      for (const [a, b] of [[1, 3], [3, 1]] as const) await g.waitFor(is(a, 'received', b, 2300), `${a} to get all of ${b}'s frames`);
      t.pass('survivors saw the link down and kept exchanging frames');

      g.spawn(2);
      for (const s of [1, 3]) {
        const up = await g.waitFor((e) => e.member === s && e.kind === 'up' && e.peer === 2 && e.value !== oldIncarnation, `${s} to see the new 2`);
        t.equal(up.value, g.incarnation(2), `member ${s}: new incarnation of 2 reported`);
      }
      for (const id of ids) g.send(id, 100);
      for (const s of [1, 3]) {
        await g.waitFor(is(2, 'received', s, 100), `new 2 to get 100 frames of ${s}`);
        await g.waitFor((e) => e.member === s && e.kind === 'received' && e.peer === 2 && e.value === 100 && g.log.indexOf(e) > g.log.findIndex(is(s, 'down', 2)), `${s} to get 100 frames of the new 2`);
      }
      for (const s of [1, 3]) t.equal(g.log.filter(is(s, 'down', 2)).length, 1, `member ${s}: exactly one linkDown for 2`);
      t.equal(g.log.filter((e) => e.kind === 'bad').length, 0, 'no frame out of order or corrupt');
    });
  }
}
