import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { eventually, startTestCluster } from '../fixtures/cluster.js';
import { HistoryRecorder } from '../fixtures/history-recorder.js';
import { checkLinearizability, type HistoryOp } from '../fixtures/linearizability.js';
import { runRegisterClient, type RegisterMix } from '../fixtures/register-workload.js';

/**
 * Linearizability under failures: concurrent clients put, compare-and-put and read (consistency=linearizable)
 * a few keys of a 3-member cluster (persistent pool, 3 replicas) while one member, then another, is
 * SIGKILLed and restarted. Every call is recorded with its outcome, definite or unknown (a lost connection,
 * a 503, a timeout: it may or may not have applied), and the history must check as linearizable.
 */
const NODES = 3;
const SHARDS = 2;
const KEYS = ['/lin/a', '/lin/b', '/lin/c'];
const CLIENTS = 6;
const MIX: RegisterMix = { get: 40, put: 20, cas: 30, create: 5, delete: 5 };
/** Members killed and restarted, one after the other (3: a follower; 1: the lowest-ranked, which leads view changes). */
const VICTIMS = [3, 1];
const OP_TIMEOUT_MS = 8_000;
/** A bound on each client's calls (the run is bounded in time anyway). */
const OPS_PER_CLIENT_MAX = 5_000;
/** The faults phase ends by then whatever happens (the whole file stays well under tap's timeout). */
const FAULTS_MS_MAX = 60_000;
/** Definite answers awaited after each kill and after each restart (through the restarted member), bounded. */
const PROGRESS_OPS = 20;
const PROGRESS_WAIT_MS = 20_000;
/** How long the clients run on after each step (kill, restart), so each state of the group sees traffic. */
const STEP_RUN_MS = 2_000;

t.test(`${NODES} members: concurrent puts, compare-and-puts and linearizable gets stay linearizable while members are killed and restarted`, async (t) => {
  const tc = await startTestCluster(t, NODES, SHARDS, NODES);
  const ids = [...tc.clients.keys()];
  await eventually(() => tc.clients.get(1)!.createPool('/lin', { type: 'persistent' }));
  for (const c of tc.clients.values()) await eventually(() => c.getPool('/lin'));

  const recorder = new HistoryRecorder({ opTimeoutMs: OP_TIMEOUT_MS });
  /** The member each call went to. */
  const memberOf = new Map<number, number>();
  let stop = false;
  const clients = Array.from({ length: CLIENTS }, (_, id) => {
    let at = id % ids.length;
    return runRegisterClient({
      recorder,
      id,
      keys: KEYS,
      mix: MIX,
      opsMax: OPS_PER_CLIENT_MAX,
      seed: 7000 + id,
      client: () => tc.clients.get(ids[at]!)!,
      stop: () => stop,
      durability: (rand) => (rand() < 0.5 ? 'delivered' : 'persisted'),
      afterOp: async (op) => {
        memberOf.set(op.id, ids[at]!);
        // each call to the next member (a write through one, a read through another); after a failure
        // (the member may be down or changing views) a pause
        at = (at + 1) % ids.length;
        if (op.result.type === 'unknown' || op.result.type === 'failed') await sleep(100);
      },
    });
  });
  const running = Promise.all(clients);

  const definite = (o: HistoryOp): boolean => o.result.type !== 'unknown' && o.result.type !== 'failed';
  const deadline = Date.now() + FAULTS_MS_MAX;
  /** Waits (bounded) until `n` more calls accepted by `pick` have definite answers; true if they did. */
  const progress = async (n: number, pick: (o: HistoryOp) => boolean = () => true): Promise<boolean> => {
    const done = (): number => recorder.history().filter((o) => definite(o) && pick(o)).length;
    const target = done() + n;
    const ms = Math.max(0, Math.min(PROGRESS_WAIT_MS, deadline - Date.now()));
    return eventually(async () => {
      if (done() < target) throw new Error('not yet');
    }, ms).then(
      () => true,
      () => false,
    );
  };

  try {
    t.ok(await progress(PROGRESS_OPS), 'the clients get answers before any failure');
    for (const id of VICTIMS) {
      await tc.cluster.kill(id);
      let since = recorder.size;
      t.ok(await progress(PROGRESS_OPS, (o) => o.id >= since), `calls are answered after member ${id} was killed`);
      await sleep(STEP_RUN_MS);
      await tc.cluster.start(id);
      await tc.cluster.waitReady(Math.max(1, deadline - Date.now()));
      since = recorder.size;
      t.ok(await progress(PROGRESS_OPS, (o) => o.id >= since && memberOf.get(o.id) === id), `member ${id} answers calls again after its restart`);
      await sleep(STEP_RUN_MS);
    }
  } finally {
    stop = true;
    await running;
  }

  const history = recorder.history();
  writeFileSync(join(tc.dir, 'history.json'), JSON.stringify(history)); // kept with the logs by SQUALL_KEEP_FAILED
  const count = (pick: (o: HistoryOp) => boolean): number => history.filter(pick).length;
  const cas = (o: HistoryOp): boolean => o.call.op === 'put' && o.call.ifMatch !== undefined;
  const unknown = count((o) => o.result.type === 'unknown');
  const writtenValues = new Set(history.filter((o) => o.call.op === 'put' && o.result.type === 'written').map((o) => (o.call as { value: string }).value));
  const readsOfWrites = count((o) => o.result.type === 'value' && writtenValues.has(o.result.value));
  t.comment(
    `${history.length} calls: ${count(definite)} definite, ${unknown} unknown (${[...new Set(history.filter((o) => o.result.type === 'unknown').map((o) => (o.result as { cause?: string }).cause))].join(', ')}), ` +
      `${count((o) => o.result.type === 'failed')} refused; ${count((o) => cas(o) && o.result.type === 'written')} CAS applied, ${count((o) => cas(o) && o.result.type === 'mismatch')} CAS refused (412); ` +
      `${readsOfWrites} reads of acknowledged writes`,
  );
  t.ok(count(definite) >= 300, `at least 300 calls with definite answers (${count(definite)})`);
  t.ok(count((o) => cas(o) && o.result.type === 'written') >= 5, 'some compare-and-puts applied');
  t.ok(count((o) => cas(o) && o.result.type === 'mismatch') >= 5, 'some compare-and-puts were refused');
  t.ok(readsOfWrites >= 50, 'linearizable gets returned values of acknowledged puts');
  for (const key of KEYS) t.ok(count((o) => o.key === key && o.result.type === 'written') >= 10, `${key} was written`);

  const startedMs = performance.now();
  const result = checkLinearizability(history);
  t.comment(`checked in ${Math.round(performance.now() - startedMs)} ms, ${result.statesExplored} states`);
  t.equal(result.verdict, 'linearizable', result.text);
});
