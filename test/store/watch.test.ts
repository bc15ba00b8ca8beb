import t from 'tap';
import type { ReleasedEvent, Watcher } from '../../src/store/index.js';
import { openTestStore, removeDir } from '../fixtures/store.js';

/** Takes `n` events from a watcher, failing after `timeoutMs`. */
async function take(w: Watcher, n: number, timeoutMs = 10_000): Promise<ReleasedEvent[]> {
  const out: ReleasedEvent[] = [];
  const deadline = setTimeout(() => w.fail(new Error(`timed out after ${out.length} of ${n} events`)), timeoutMs);
  try {
    while (out.length < n) {
      const r = await w.next();
      if (r.done) break;
      out.push(r.value);
    }
  } finally {
    clearTimeout(deadline);
  }
  return out;
}

t.test('watch: replay from a version, live follow, total order, exact resume after an event id', async (t) => {
  const ts = await openTestStore();
  t.teardown(async () => {
    await ts.close();
    removeDir(ts.dir);
  });
  const { store, clock } = ts;
  await store.createPool('/w', { type: 'persistent' });
  await store.createPool('/other', { type: 'persistent' });
  const early = [];
  for (let i = 0; i < 12; i++) {
    clock.now += 10;
    early.push(await store.put(`/w/k${i}`, Buffer.from(`e${i}`)));
    await store.put(`/other/k${i}`, Buffer.from('x')); // filtered out by the prefix
  }
  await store.delete('/w/k0');
  clock.now += 1_000_000;

  const w = store.watch.subscribe('/w/', store.watch.positionFromVersion(0));
  const replayed = await take(w, 13);
  t.equal(replayed.length, 13);
  t.ok(replayed.every((e) => e.key.startsWith('/w/')), 'prefix filter');
  t.equal(replayed[12]!.op, 'delete');
  for (let i = 1; i < replayed.length; i++) {
    const a = replayed[i - 1]!;
    const b = replayed[i]!;
    t.ok(a.timestamp_us < b.timestamp_us || (a.timestamp_us === b.timestamp_us && (a.order < b.order || (a.order === b.order && a.version < b.version))), 'total order');
  }
  // live: new writes arrive once stable
  const live = [];
  for (let i = 0; i < 5; i++) {
    clock.now += 10;
    live.push(await store.put(`/w/live${i}`, Buffer.from(`l${i}`)));
  }
  clock.now += 1_000_000;
  const followed = await take(w, 5);
  t.same(followed.map((e) => e.key), live.map((l) => l.key), 'live events in order');
  w.close();

  // resume after the 7th replayed event: exactly the rest, in the same order
  const resumed = store.watch.subscribe('/w/', await store.watch.positionFromEventId(replayed[6]!.id));
  const rest = await take(resumed, 11);
  t.same(rest.map((e) => e.id), [...replayed.slice(7), ...followed].map((e) => e.id), 'resume is exact: no loss, no duplicate');
  resumed.close();

  // from now: only what comes next
  const fromNow = store.watch.subscribe('/w/', null);
  clock.now += 10;
  const next = await store.put('/w/after', Buffer.from('a'));
  clock.now += 1_000_000;
  const [first] = await take(fromNow, 1);
  t.equal(first!.version, next.version);
  t.equal(first!.key, '/w/after');
  fromNow.close();
  await t.rejects(store.watch.positionFromEventId('nonsense'), /not an event id/);
});

t.test('watch: a watcher that falls too far behind is cut off with overloaded', async (t) => {
  const ts = await openTestStore({ limits: { watchQueueEventsMax: 5 } });
  t.teardown(async () => {
    await ts.close();
    removeDir(ts.dir);
  });
  const { store, clock } = ts;
  await store.createPool('/w', { type: 'persistent' });
  const w = store.watch.subscribe('/w/', null);
  for (let i = 0; i < 20; i++) {
    clock.now += 10;
    await store.put(`/w/k${i}`, Buffer.from('x'));
  }
  clock.now += 1_000_000;
  await t.rejects(
    (async () => {
      for (;;) {
        await new Promise((r) => setTimeout(r, 50));
        const r = await w.next();
        if (r.done) return;
      }
    })(),
    { code: 'overloaded' },
  );
});
