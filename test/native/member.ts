/**
 * A group member process for the fabric tests (forked by harness.ts, talks to it over the IPC channel).
 *
 * Protocol: the parent sends `start` (rank, group size, fabric config, scenario); the member opens its
 * endpoint, registers its regions and answers `hello` with its blobs; the parent relays everyone's hellos in
 * `peers` (the IPC channel stands in for the group's TCP connection); the member wires peers and runs the
 * scenario, sends `progress` notes and finally `result`, then waits for `exit`.
 */
import { createHash } from 'node:crypto';
import { fabricConfig, type FabricConfigInput } from '../../src/transport/fabric/config.js';
import { FabricEndpoint } from '../../src/transport/fabric/endpoint.js';
import { GuardedTable } from '../../src/transport/fabric/guarded-table.js';
import { RingReceiver, RingSender, type RingGeometry } from '../../src/transport/fabric/message-ring.js';
import { messageBytes, TABLE_REGION, ringRegion, type Hello, type ToMember, type FromMember, type Scenario } from './protocol.js';

function send(m: FromMember): void {
  process.send!(m);
}

process.on('disconnect', () => process.exit(0));

let endpoint: FabricEndpoint | undefined;

process.on('message', (raw) => {
  const m = raw as ToMember;
  if (m.op === 'start') start(m.rank, m.n, m.config, m.scenario);
  else if (m.op === 'exit') {
    if (m.close !== false) endpoint?.close();
    process.exit(0);
  }
});

let onPeers: ((hellos: Hello[]) => void) | undefined;
process.on('message', (raw) => {
  const m = raw as ToMember;
  if (m.op === 'peers') onPeers?.(m.hellos);
});

function start(rank: number, n: number, config: FabricConfigInput, scenario: Scenario): void {
  const ep = FabricEndpoint.open(fabricConfig(config));
  endpoint = ep;
  const failures: Record<number, string> = {};
  ep.onPeerFailed((peer, reason) => {
    failures[peer] = reason;
    send({ op: 'progress', rank, note: 'peer-failed', value: peer, reason });
  });

  const ranks = [...Array(n).keys()];
  const others = ranks.filter((r) => r !== rank);
  const regions: Record<number, string> = {};
  let table: GuardedTable | undefined;
  let sender: RingSender | undefined;
  const receivers = new Map<number, RingReceiver>();

  if (scenario.kind === 'rows' || scenario.kind === 'stream') {
    const payloadBytes = scenario.kind === 'rows' ? scenario.payloadBytes : 64;
    table = new GuardedTable(ep, { regionId: TABLE_REGION, rows: n, rowPayloadBytes: payloadBytes, myRow: rank });
    regions[TABLE_REGION] = Buffer.from(table.regionBlob()).toString('base64');
  }
  if (scenario.kind === 'ring' || scenario.kind === 'stream') {
    const geometryOf = (r: number): RingGeometry => ({ regionId: ringRegion(r), capacityBytes: scenario.capacityBytes, ackSlots: n });
    if (scenario.senders.includes(rank)) {
      sender = new RingSender(ep, geometryOf(rank));
      regions[ringRegion(rank)] = Buffer.from(sender.regionBlob()).toString('base64');
    }
    for (const s of scenario.senders) {
      if (s === rank) continue;
      const rx = new RingReceiver(ep, geometryOf(s), s, rank);
      receivers.set(s, rx);
      regions[ringRegion(s)] = Buffer.from(rx.regionBlob()).toString('base64');
    }
  }
  onPeers = (hellos) => {
    for (const h of hellos) {
      if (h.rank === rank) continue;
      ep.addPeer(h.rank, Buffer.from(h.endpoint, 'base64'));
      for (const [id, blob] of Object.entries(h.regions)) {
        // A peer's copy of a region I also hold (the table, its ring, or my ring's replica at the peer).
        const regionId = Number(id);
        if (regionId === TABLE_REGION || regionId === ringRegion(h.rank) || regionId === ringRegion(rank)) {
          ep.addRemoteRegion(h.rank, Buffer.from(blob, 'base64'));
        }
      }
    }
    if (scenario.kind === 'rows') runRows(rank, others, table!, scenario.updates);
    else if (scenario.kind === 'ring') runRing(rank, others, scenario, sender, receivers, failures);
    else if (scenario.kind === 'stream') runStream(rank, others, scenario, table!, sender, receivers, failures);
    else send({ op: 'result', rank, result: { shmName: ep.shmName } });
  };
  send({ op: 'hello', hello: { rank, endpoint: Buffer.from(ep.endpointBlob()).toString('base64'), regions, shmName: ep.shmName } });
}

/** Payload of a row at seq s: seq at both ends, (row + s) & 0xff in between. */
function fillRow(payload: Uint8Array, row: number, s: bigint): void {
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  dv.setBigUint64(0, s, true);
  payload.fill((row + Number(s & 0xffn)) & 0xff, 8, payload.length - 8);
  dv.setBigUint64(payload.length - 8, s, true);
}

function checkRow(payload: Uint8Array, row: number, s: bigint): boolean {
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  if (dv.getBigUint64(0, true) !== s || dv.getBigUint64(payload.length - 8, true) !== s) return false;
  const b = (row + Number(s & 0xffn)) & 0xff;
  for (let i = 8; i < payload.length - 8; i++) if (payload[i] !== b) return false;
  return true;
}

function runRows(rank: number, others: number[], table: GuardedTable, updates: number): void {
  for (const r of others) table.setPeer(r, r);
  const t0 = performance.now();
  let goodReads = 0;
  let badReads = 0;
  const seen = new Map<number, bigint>(others.map((r) => [r, 0n]));
  const finish = () => {
    if (doneUpdating && [...seen.values()].every((s) => s === BigInt(updates))) {
      clearInterval(republish);
      send({ op: 'result', rank, result: { elapsedMs: Math.round(performance.now() - t0), stats: endpoint!.stats(), goodReads, badReads, tornReads: table.tornReads, seen: Object.fromEntries([...seen].map(([k, v]) => [k, Number(v)])) } });
    }
  };
  table.watchRows((row) => {
    const r = table.readInPlace(row, (p) => {
      const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
      return { ok: checkRow(p, row, dv.getBigUint64(0, true)), s: dv.getBigUint64(0, true) };
    });
    if (!r) return; // torn: a later change will come
    if (r.value.ok && r.value.s === r.seq) goodReads++;
    else badReads++;
    const prev = seen.get(row)!;
    if (r.seq < prev) badReads++; // rows never go back
    seen.set(row, r.seq > prev ? r.seq : prev);
    finish();
  });
  let sent = 0;
  let doneUpdating = false;
  // Peers finishing later still need my final row: republish it now and then until everyone is done.
  const republish = setInterval(() => table.republish(), 200);
  const burst = () => {
    for (let i = 0; i < 50 && sent < updates; i++) {
      sent++;
      table.update((p) => fillRow(p, rank, BigInt(sent)));
    }
    if (sent < updates) setImmediate(burst);
    else {
      doneUpdating = true;
      finish();
    }
  };
  burst();
}

function runRing(
  rank: number,
  others: number[],
  scenario: Extract<Scenario, { kind: 'ring' }>,
  sender: RingSender | undefined,
  receivers: Map<number, RingReceiver>,
  failures: Record<number, string>,
): void {
  const counts: Record<number, number> = {};
  const digests: Record<number, string> = {};
  let bad = 0;
  const hashes = new Map<number, ReturnType<typeof createHash>>();
  let sentAll = sender === undefined;
  const expectedFrom = (s: number) => (scenario.killRank !== undefined && s === scenario.killRank ? undefined : scenario.count);
  const finish = () => {
    const allIn = [...receivers.keys()].every((s) => {
      const want = expectedFrom(s);
      return want === undefined || counts[s] === want;
    });
    const failuresIn = scenario.expectFailure === undefined || failures[scenario.expectFailure] !== undefined;
    if (sentAll && allIn && failuresIn) {
      for (const [s, h] of hashes) digests[s] = h.digest('hex');
      hashes.clear();
      const stats = sender ? { usedBytes: sender.usedBytes } : {};
      send({ op: 'result', rank, result: { counts, digests, bad, failures, guardMisses: [...receivers.values()].reduce((a, r) => a + r.guardMisses, 0), ...stats } });
      finishNow = () => {};
    }
  };
  let finishNow = finish;
  for (const [s, rx] of receivers) {
    counts[s] = 0;
    hashes.set(s, createHash('sha256'));
    rx.onReadable(() => {
      const msgs = rx.poll();
      for (const m of msgs) {
        const expected = messageBytes(s, m.seq, scenario.sizes);
        if (m.seq !== counts[s]! + 1 || Buffer.compare(Buffer.from(m.payload.buffer, m.payload.byteOffset, m.payload.length), expected) !== 0) bad++;
        hashes.get(s)?.update(m.payload);
        counts[s]!++;
        if (counts[s] === scenario.reportAfter) send({ op: 'progress', rank, note: 'received', value: s });
      }
      if (msgs.length > 0) rx.release(msgs[msgs.length - 1]!.end);
      finishNow();
    });
  }
  if (sender) {
    for (const r of others) sender.addReceiver(r, r);
    let seq = 0;
    const pump = () => {
      // Append as many as fit, flush once per turn (the batching the driver does).
      while (seq < scenario.count) {
        const payload = messageBytes(rank, seq + 1, scenario.sizes);
        if (!sender.send(payload)) break;
        seq++;
      }
      sender.flush();
      if (seq === scenario.count) {
        sentAll = true;
        finishNow();
      }
    };
    sender.onWritable(() => setImmediate(pump));
    for (const peer of Object.keys(failures)) sender.removeReceiver(Number(peer));
    // A receiver that dies stops acking: drop it so the others keep going.
    endpoint!.onPeerFailed((peer) => {
      sender.removeReceiver(peer);
      finishNow();
    });
    pump();
  } else {
    endpoint!.onPeerFailed(() => finishNow());
  }
}

function runStream(
  rank: number,
  others: number[],
  scenario: Extract<Scenario, { kind: 'stream' }>,
  table: GuardedTable,
  sender: RingSender | undefined,
  receivers: Map<number, RingReceiver>,
  failures: Record<number, string>,
): void {
  for (const r of others) table.setPeer(r, r);
  let beats = 0;
  const heartbeat = setInterval(() => table.update((p) => p.fill(++beats & 0xff)), scenario.heartbeatMs);
  let received = 0;
  let reported = false;
  let sent = 0;
  const done = () => {
    if (reported || rank === scenario.victim || failures[scenario.victim] === undefined) return;
    reported = true;
    clearInterval(heartbeat);
    send({ op: 'result', rank, result: { failures, sent, received } });
  };
  endpoint!.onPeerFailed((peer) => {
    sender?.removeReceiver(peer);
    table.dropPeer(peer);
    done();
  });
  for (const rx of receivers.values()) {
    rx.onReadable(() => {
      const msgs = rx.poll();
      received += msgs.length;
      if (msgs.length > 0) rx.release(msgs[msgs.length - 1]!.end);
      if (rank === scenario.victim && received >= scenario.reportAfter && received - msgs.length < scenario.reportAfter) {
        send({ op: 'progress', rank, note: 'received', value: received });
      }
    });
  }
  if (rank === scenario.victim && scenario.senders.length === 0) send({ op: 'progress', rank, note: 'received', value: 0 });
  if (sender) {
    for (const r of others) sender.addReceiver(r, r);
    const payload = Buffer.alloc(scenario.payloadBytes, rank);
    const pump = () => {
      if (reported) return;
      let n = 0;
      while (n < 64 && sender.send(payload)) n++;
      sent += n;
      sender.flush();
      if (n === 64) setImmediate(pump); // else: full, onWritable resumes
    };
    sender.onWritable(() => setImmediate(pump));
    pump();
  }
}
