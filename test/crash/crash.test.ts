import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { WriteResult } from '../../src/api/types.js';
import { SquallClient } from '../../src/client/index.js';
import { spawnNode, type NodeProcess } from '../fixtures/node-process.js';
import { removeDir } from '../fixtures/store.js';

/**
 * Crash safety: a node serving a stream of `persisted` puts is killed with SIGKILL mid-stream, twice;
 * after each restart every acknowledged put reads back with the same version, timestamp and bytes.
 */
const WRITERS = 16;
const ROUNDS = 2;
const ACKS_BEFORE_KILL = 400;
const ROUND_MS_MAX = 20_000;

t.test('every acknowledged persisted put survives SIGKILL of the node', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'squall-crash-'));
  let node: NodeProcess | null = null;
  t.teardown(async () => {
    await node?.kill();
    removeDir(dir);
  });
  const acked: Array<WriteResult & { value: Buffer }> = [];
  node = await spawnNode(dir);
  {
    const c = new SquallClient(node.url);
    await c.createPool('/crash', { type: 'persistent' });
    await c.close();
  }
  for (let round = 0; round < ROUNDS; round++) {
    const client = new SquallClient({ url: node.url, retryAttemptsMax: 1, connections: WRITERS });
    let stop = false;
    let roundAcks = 0;
    const writer = async (w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        // a few hot keys (many versions) and many cold ones
        const key = i % 3 === 0 ? `/crash/hot${w % 4}` : `/crash/r${round}-w${w}-${i}`;
        const value = randomBytes(1 + ((w * 131 + i * 17) % 3000));
        try {
          const r = await client.put(key, value, { durability: 'persisted' });
          acked.push({ ...r, value });
          roundAcks++;
        } catch {
          return; // the node died under us: this put was never acknowledged
        }
      }
    };
    const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
    const started = Date.now();
    while (roundAcks < ACKS_BEFORE_KILL && Date.now() - started < ROUND_MS_MAX) await new Promise((r) => setTimeout(r, 10));
    t.ok(roundAcks > 0, `round ${round}: ${roundAcks} puts acknowledged before the kill`);
    await node.kill(); // SIGKILL while writers are mid-stream
    stop = true;
    await Promise.all(writers);
    await client.close().catch(() => undefined);

    node = await spawnNode(dir);
    const reader = new SquallClient({ url: node.url, connections: 8 });
    let bad = 0;
    for (const a of acked) {
      const r = await reader.get(a.key, { version: a.version }).catch((e: Error) => e);
      if (r instanceof Error) {
        bad++;
        if (bad <= 5) t.fail(`acknowledged ${a.key}@${a.version} cannot be read back: ${r.message}`);
      } else if (r.version !== a.version || r.timestampUs !== a.timestamp_us || !r.value.equals(a.value)) {
        bad++;
        if (bad <= 5) t.fail(`acknowledged ${a.key}@${a.version} read back as ${r.key}@${r.version} ts ${r.timestampUs} (${r.value.byteLength} bytes)`);
      }
    }
    t.equal(bad, 0, `round ${round}: all ${acked.length} acknowledged puts read back with the same version, timestamp and bytes`);
    await reader.close();
  }
  await node.stop();
});
