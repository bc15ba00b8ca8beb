import { randomBytes } from 'node:crypto';
import t from 'tap';
import { request } from 'undici';
import { SquallError, shardOf } from '../../src/api/index.js';
import { SquallClient, type BatchOpInput, type RetryInfo } from '../../src/client/index.js';
import { eventually, startTestCluster, type TestCluster } from '../fixtures/cluster.js';

/**
 * The routed client against a real cluster of 3 member processes with 2 shards of 2 replicas (so each shard
 * has a member that does not hold it): requests and batch parts go straight to members of their shard (no
 * member forwards any: squall_requests_forwarded_total stays put, while a request sent to a member without
 * the shard moves it); then a member is SIGKILLed while the client streams puts, and every acknowledged put
 * is in its key's history exactly once, the retried ones (same request id on another member) included.
 */

/** The samples of a member's /metrics whose name is `name`, by their label text (`method="put"`). */
async function samples(url: string, name: string): Promise<Map<string, number>> {
  const res = await request(`${url}/metrics`, { headersTimeout: 5000, bodyTimeout: 5000 });
  const text = await res.body.text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out.set(m[2] ?? '', Number(m[3]));
  }
  return out;
}

/** Calls each live member has forwarded so far, all methods together, by member id. */
async function forwardedBy(tc: TestCluster, ids: readonly number[]): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const id of ids) {
    const s = await samples(tc.cluster.members.get(id)!.url, 'squall_requests_forwarded_total');
    out.set(id, [...s.values()].reduce((a, b) => a + b, 0));
  }
  return out;
}

/** Object PUTs each member has answered 200 so far, by member id. */
async function putsAnsweredBy(tc: TestCluster, ids: readonly number[]): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const id of ids) {
    const s = await samples(tc.cluster.members.get(id)!.url, 'squall_http_requests_total');
    out.set(id, s.get('method="PUT",route="objects",status="200"') ?? 0);
  }
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Acked {
  key: string;
  version: number;
  value: Buffer;
}

t.test('3 members, 2 shards of 2 replicas: routed requests are not forwarded; a killed member costs no write twice', async (t) => {
  const tc = await startTestCluster(t, 3, 2, 2);
  const ids = [...tc.cluster.members.keys()];
  await eventually(() => tc.clients.get(1)!.createPool('/r', { type: 'persistent' }));
  for (const c of tc.clients.values()) await eventually(() => c.getPool('/r'));
  const info = await tc.clients.get(1)!.cluster();
  const holders = info.subgroups.find((s) => s.type === 'persistent' && s.subgroup === 0)!.shards.map((s) => s.members);
  t.equal(holders.length, 2, 'two shards');
  t.ok(holders.every((m) => m.length === 2 && ids.some((id) => !m.includes(id))), `each shard has 2 of the 3 members (${JSON.stringify(holders)})`);

  const retries: Array<RetryInfo & { atMs: number }> = [];
  const client = new SquallClient({
    url: tc.cluster.members.get(1)!.url,
    retryAttemptsMax: 60,
    retryTimeoutMs: 45_000,
    retryDelayMs: 20,
    retryDelayMsMax: 500,
    layoutRefreshIntervalMs: 500,
    headersTimeoutMs: 20_000,
    onRetry: (r) => retries.push({ ...r, atMs: Date.now() }),
  });
  t.teardown(() => client.close());

  // ---- routed requests of both shards, and a batch across them: no member forwards any ----
  const keysOf: string[][] = [[], []];
  for (let i = 0; keysOf.some((k) => k.length < 6); i++) {
    const key = `/r/k${i}`;
    const shard = keysOf[shardOf(key, 2, null)]!;
    if (shard.length < 6) shard.push(key);
  }
  const keys = keysOf.flat();
  const forwardedBefore = await forwardedBy(tc, ids);
  const putsBefore = await putsAnsweredBy(tc, ids);
  const written = new Map<string, number>();
  for (const key of keys) {
    const w = await client.put(key, `v:${key}`);
    t.equal(w.shard, shardOf(key, 2, null), `${key} was written on its shard`);
    written.set(key, w.version);
  }
  t.not(client.routedView, null, 'the client routes by the cluster layout');
  for (const key of keys) {
    const r = await client.get(key);
    t.equal(r.value.toString(), `v:${key}`);
    t.equal(r.version, written.get(key));
    t.same((await client.history(key)).versions.map((v) => v.version), [written.get(key)], `${key}: one version in its history`);
  }
  const [a, b] = [keysOf[0]!, keysOf[1]!];
  const ops: BatchOpInput[] = [
    { op: 'put', key: a[0]!, value: 'batch-a0' },
    { op: 'put', key: b[0]!, value: 'batch-b0' },
    { op: 'get', key: a[0]! },
    { op: 'get', key: b[1]! },
    { op: 'put', key: '/r/new-a', value: 'n' },
    { op: 'get', key: '/r/absent' },
  ];
  const results = await client.batch(ops);
  t.same(results.map((r) => r.status), [200, 200, 200, 200, 200, 404], 'every op of the batch answered');
  t.equal(results[2]!.value!.toString(), 'batch-a0', 'a get after a put of its shard sees it (order kept within a shard)');
  t.equal(results[3]!.value!.toString(), `v:${b[1]}`);
  t.same([results[0]!.shard, results[1]!.shard], [0, 1], 'the batch spans both shards');
  const forwardedAfter = await forwardedBy(tc, ids);
  for (const id of ids) t.equal(forwardedAfter.get(id)! - forwardedBefore.get(id)!, 0, `member ${id} forwarded none of the routed requests`);
  const putsAfter = await putsAnsweredBy(tc, ids);
  const writers = ids.filter((id) => putsAfter.get(id)! > putsBefore.get(id)!);
  t.ok(writers.length >= 1, `the routed puts were answered by member(s) ${writers.join(', ')}`);

  // The metric does see forwarding: a request sent to a member that does not hold the key's shard.
  const outsider = ids.find((id) => !holders[0]!.includes(id))!;
  await tc.clients.get(outsider)!.put(a[1]!, 'via an outsider');
  const forwardedByOutsider = (await forwardedBy(tc, [outsider])).get(outsider)! - forwardedAfter.get(outsider)!;
  t.equal(forwardedByOutsider, 1, `member ${outsider}, not in shard 0, forwarded the put it was sent`);

  // A write sent again with its request id through other members (one that holds the shard, one that
  // forwards) answers the first result and adds no version.
  const dupKey = b[2]!;
  const first = await client.put(dupKey, 'once', { requestId: 'routing-test-dup' });
  for (const id of ids) {
    const again = await tc.clients.get(id)!.put(dupKey, 'twice', { requestId: 'routing-test-dup' });
    t.equal(again.version, first.version, `the same request id through member ${id} gives the first result`);
  }
  t.same((await client.history(dupKey)).versions.map((v) => v.version), [written.get(dupKey), first.version], 'and one new version');
  t.equal((await client.get(dupKey)).value.toString(), 'once');

  // ---- SIGKILL a member this client writes to, while it streams puts (and batches) with retries ----
  const victim = writers.find((id) => holders.every((m) => m.includes(id))) ?? writers[0]!;
  const survivors = ids.filter((id) => id !== victim);
  const viewBefore = client.routedView!;
  const acked: Acked[] = [];
  const unknown: string[] = [];
  let stop = false;
  const deadline = Date.now() + 60_000;
  const running = (): boolean => !stop && Date.now() < deadline;
  const outcome = (key: string, e: unknown): void => {
    if (!(e instanceof SquallError)) throw e;
    unknown.push(key);
  };
  const putters = Array.from({ length: 4 }, async (_, w) => {
    for (let n = 0; n < 2000 && running(); n++) {
      const key = `/r/s/w${w}-${n}`;
      const value = randomBytes(24);
      try {
        const r = await client.put(key, value, { durability: 'persisted' });
        acked.push({ key, version: r.version, value });
      } catch (e) {
        outcome(key, e);
      }
    }
  });
  const batcher = (async () => {
    for (let n = 0; n < 1000 && running(); n++) {
      const batchOps = [0, 1].map((s) => ({ op: 'put' as const, key: `/r/s/b${n}-${s}`, value: randomBytes(24) }));
      try {
        const rs = await client.batch(batchOps);
        rs.forEach((r, i) => {
          const op = batchOps[i]!;
          if (r.status === 200) acked.push({ key: op.key, version: r.version!, value: Buffer.from(op.value) });
          else unknown.push(op.key);
        });
      } catch (e) {
        for (const op of batchOps) outcome(op.key, e);
      }
    }
  })();
  const writing = Promise.all([...putters, batcher]);
  const waitAcked = async (count: number, boundMs: number): Promise<boolean> => {
    const until = Date.now() + boundMs;
    while (acked.length < count && Date.now() < until) await sleep(50);
    return acked.length >= count;
  };
  try {
    t.ok(await waitAcked(40, 20_000), `writes flow before the kill (${acked.length} acknowledged)`);
    const killedAtMs = Date.now();
    await tc.cluster.kill(victim);
    const atKill = acked.length;
    t.ok(await waitAcked(atKill + 60, 40_000), `writes go on after member ${victim} was killed (${acked.length - atKill} more acknowledged)`);
    const viewUntil = Date.now() + 20_000;
    while (client.routedView === viewBefore && Date.now() < viewUntil) await sleep(100);
    t.ok(client.routedView! > viewBefore, `the client picked up the view without member ${victim} (view ${viewBefore} → ${client.routedView})`);
    const after = retries.filter((r) => r.atMs >= killedAtMs);
    t.ok(after.some((r) => r.origin === tc.cluster.members.get(victim)!.url), `requests sent to the killed member were retried (${after.length} retries)`);
    stop = true;
    await writing;
    const retriedIds = new Set(after.map((r) => r.requestId).filter((id) => id !== undefined));
    t.ok(retriedIds.size > 0, `${retriedIds.size} writes were retried with their request id`);
  } finally {
    stop = true;
    await writing.catch(() => undefined);
  }
  t.ok(acked.length > 100, `${acked.length} writes acknowledged, ${unknown.length} of unknown outcome`);

  // ---- every acknowledged write is in its key's history exactly once, through every survivor ----
  const readers: Array<[string, SquallClient]> = [['the routed client', client], ...survivors.map((id): [string, SquallClient] => [`member ${id}`, tc.clients.get(id)!])];
  for (const [name, reader] of readers) {
    let bad = 0;
    const check = async (x: Acked): Promise<void> => {
      const h = await eventually(() => reader.history(x.key), 20_000).catch((e: Error) => e);
      const ok = !(h instanceof Error) && h.versions.length === 1 && h.versions[0]!.version === x.version && !h.versions[0]!.deleted;
      if (!ok && ++bad <= 3) t.fail(`${name}: ${x.key} acknowledged at ${x.version} has history ${h instanceof Error ? h.message : JSON.stringify(h.versions)}`);
    };
    for (let i = 0; i < acked.length; i += 16) await Promise.all(acked.slice(i, i + 16).map(check));
    t.equal(bad, 0, `${name}: each of the ${acked.length} acknowledged writes is in its history once, with its version`);
  }
  let values = 0;
  for (let i = 0; i < acked.length; i += 16) {
    await Promise.all(
      acked.slice(i, i + 16).map(async (x) => {
        const r = await client.get(x.key, { version: x.version });
        if (r.version === x.version && r.value.equals(x.value)) values++;
      }),
    );
  }
  t.equal(values, acked.length, 'the routed client reads each acknowledged value at its version');
  let twice = 0;
  for (const key of unknown) {
    const h = await eventually(() => client.history(key).catch((e) => (e instanceof SquallError && e.code === 'not_found' ? null : Promise.reject(e))), 20_000);
    if (h !== null && h.versions.length > 1) twice++;
  }
  t.equal(twice, 0, `no write of unknown outcome (${unknown.length}) was applied twice`);
});
