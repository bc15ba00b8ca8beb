import t from 'tap';
import { closedLoop, measureRun } from '../../bench/closed-loop.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

t.test('workers run until the deadline and never exceed the concurrency', async (t) => {
  let inFlight = 0;
  let maxInFlight = 0;
  const res = await closedLoop(
    async () => {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      await tick();
      inFlight--;
      return 3;
    },
    { concurrency: 4, durationMs: 100, record: true },
  );
  t.equal(maxInFlight, 4);
  t.ok(res.requests > 0);
  t.equal(res.entries, 3 * res.requests, 'entries are what the operations returned');
  t.equal(res.histogram!.totalCount, res.requests, 'one latency per request');
  t.equal(res.errors, 0);
  t.notOk(res.aborted);
});

t.test('errors are counted, not timed, and a worker stops after too many in a row', async (t) => {
  let calls = 0;
  const res = await closedLoop(
    async () => {
      calls++;
      await tick();
      if (calls % 2 === 0) throw new Error(`fail ${calls}`);
      return 1;
    },
    { concurrency: 1, durationMs: 50, record: true },
  );
  t.ok(res.errors > 0);
  t.equal(res.histogram!.totalCount, res.requests);
  t.match(res.lastError, /^fail \d+$/);
  t.notOk(res.aborted);

  const down = await closedLoop(async () => Promise.reject(new Error('down')), { concurrency: 2, durationMs: 60_000, record: false, consecutiveErrorsMax: 5 });
  t.ok(down.aborted, 'a target that always fails ends the loop long before the deadline');
  t.equal(down.errors, 10);
  t.equal(down.histogram, null, 'warm-up loops record nothing');
});

t.test('a measured run reports entries per second and percentiles', async (t) => {
  const sample = await measureRun(async () => {
    await tick();
    return 1;
  }, { concurrency: 2, warmupMs: 20, durationMs: 50 });
  t.ok(sample.opsPerS > 0);
  t.ok(sample.p50Ms !== null && sample.p99Ms !== null && sample.p50Ms <= sample.p99Ms);
  t.equal(sample.errors, 0);
  t.type(sample.load1m, 'number');
});
