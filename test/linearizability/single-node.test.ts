/**
 * End to end: concurrent clients put, compare-and-put, create, delete and read (consistency=linearizable)
 * a few keys of a real node in this process; the recorded history must check as linearizable, and the
 * same history with a read turned stale must not.
 */
import t from 'tap';
import { HistoryRecorder } from '../fixtures/history-recorder.js';
import { httpNode } from '../fixtures/http-node.js';
import { checkLinearizability } from '../fixtures/linearizability.js';
import { staleReads } from '../fixtures/register-histories.js';
import { runRegisterClient, type RegisterMix } from '../fixtures/register-workload.js';

const CLIENTS = 8;
const OPS_PER_CLIENT = 40;
const KEYS = ['/lin/a', '/lin/b', '/lin/c'];
const MIX: RegisterMix = { get: 40, put: 25, cas: 20, create: 7, delete: 8 };

t.test('a concurrent history against one node is linearizable', async (t) => {
  const { client } = await httpNode(t);
  await client.createPool('/lin', { type: 'persistent' });
  const recorder = new HistoryRecorder({ opTimeoutMs: 20_000 });

  await Promise.all(
    Array.from({ length: CLIENTS }, (_, id) =>
      runRegisterClient({ recorder, id, keys: KEYS, mix: MIX, opsMax: OPS_PER_CLIENT, seed: 1000 + id, client: () => client }),
    ),
  );

  const history = recorder.history();
  t.equal(history.length, CLIENTS * OPS_PER_CLIENT);
  const count = (type: string): number => history.filter((o) => o.result.type === type).length;
  t.equal(count('unknown') + count('failed'), 0, 'a healthy node answers every call');
  t.ok(count('value') > 0 && count('written') > 0 && count('mismatch') > 0, `reads, writes and 412s: ${count('value')}, ${count('written')}, ${count('mismatch')}`);

  const result = checkLinearizability(history);
  t.equal(result.verdict, 'linearizable', result.text);
  t.equal(result.keys.length, KEYS.length);

  // the checker is not vacuous on this history: a read turned stale is caught
  const stale = staleReads(history).filter((m) => m.guaranteed);
  t.ok(stale.length > 0, 'some read can be turned certainly stale');
  const mutated = checkLinearizability(stale[0]!.history);
  t.equal(mutated.verdict, 'not_linearizable', mutated.text);
});
