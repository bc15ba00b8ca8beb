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

const CLIENTS = 8;
const OPS_PER_CLIENT = 40;
const KEYS = ['/lin/a', '/lin/b', '/lin/c'];

/** mulberry32: each client's choices are the same on every run (the interleaving is not). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), a | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

t.test('a concurrent history against one node is linearizable', async (t) => {
  const { client } = await httpNode(t);
  await client.createPool('/lin', { type: 'persistent' });
  const recorder = new HistoryRecorder({ opTimeoutMs: 20_000 });

  const runClient = async (id: number): Promise<void> => {
    const rand = prng(1000 + id);
    // the newest version this client saw per key, for its compare-and-puts
    const seen = new Map<string, number>();
    for (let i = 0; i < OPS_PER_CLIENT; i++) {
      const key = KEYS[Math.floor(rand() * KEYS.length)]!;
      const value = `c${id}-${i}`;
      const dice = rand();
      let op;
      if (dice < 0.4) {
        op = await recorder.get(client, id, key);
      } else if (dice < 0.65) {
        op = await recorder.put(client, id, key, value);
      } else if (dice < 0.85) {
        // one in four names a version older than the newest seen: a certain 412
        const last = seen.get(key) ?? 1;
        op = await recorder.put(client, id, key, value, { ifMatch: rand() < 0.25 ? last - 1 : last });
      } else if (dice < 0.92) {
        op = await recorder.put(client, id, key, value, { ifNoneMatch: true });
      } else {
        op = await recorder.delete(client, id, key);
      }
      const r = op.result;
      if (r.type === 'written' || r.type === 'value' || (r.type === 'deleted' && r.version !== undefined)) seen.set(key, r.version!);
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, (_, id) => runClient(id)));

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
