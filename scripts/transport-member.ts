import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import hdr from 'hdr-histogram-js';
import { pack, unpack } from 'msgpackr';
import { createLogger } from '../src/log.js';
import { parseGroupConfig } from '../src/transport/config.js';
import type { DriverListener, TransportDriver } from '../src/transport/driver.js';
import { GroupMember } from '../src/transport/member.js';
import type { Delivered } from '../src/transport/ordered-shard.js';
import type { ReplicatedShard } from '../src/transport/replicated-shard.js';
import { MemoryTransportStorage, memoryLogChunk, type StateTransfer, type StateTransferHooks } from '../src/transport/storage.js';
import { TcpDriver } from '../src/transport/tcp-driver.js';
import { FabricDriver } from '../src/transport/fabric/fabric-driver.js';
import { createTransportDriver, parseTransport } from '../src/transport/transport-choice.js';

/**
 * One group member as its own process, driven by its parent through IPC (the multi-process tests and the
 * multicast bench). It keeps state in memory only (a restarted process joins afresh). Its frames travel
 * over the transport chosen by --transport (transport-choice.ts; default {"kind":"tcp"}, the TCP driver;
 * {"kind":"fabric","provider":...} the native data plane, with the TCP driver as its control link).
 *
 *   node --import tsx scripts/transport-member.ts --config '<GroupConfigInput JSON>' --id N [--join] [--mode log|bench]
 *     [--transport '<transport JSON>']
 *
 * mode "log" keeps every delivered payload in an in-memory log per shard (digests, state transfer);
 * mode "bench" only counts deliveries and records latencies (payloads carry their send time).
 *
 * Parent → child: {cmd: 'stream', shard, size, count?, seconds?} | {cmd: 'digest'} | {cmd: 'describe'} | {cmd: 'bench',
 *   shard, size, seconds, send, warmupSeconds} | {cmd: 'exit'}
 * Child → parent: {ev: 'ready', port} | {ev: 'view', vid, members, active} | {ev: 'stopped', kind, reason}
 *   | {ev: 'linkUp', peer, incarnation} | {ev: 'linkDown', peer} (the driver's link events, as the core sees them)
 *   | {ev: 'streamed', sent} | {ev: 'digest', ...} | {ev: 'describe', state} | {ev: 'bench', ...} | {ev: 'fatal', message}
 *   (digest and bench carry `fabric`, the data plane's native counters, when the transport is fabric)
 */

const { values } = parseArgs({
  options: {
    config: { type: 'string' },
    id: { type: 'string' },
    join: { type: 'boolean', default: false },
    mode: { type: 'string', default: 'log' },
    transport: { type: 'string' },
  },
});
const config = parseGroupConfig(JSON.parse(values.config!));
const selfId = Number(values.id);
const mode = values.mode === 'bench' ? 'bench' : 'log';
const me = config.members.find((m) => m.id === selfId)!;
const log = createLogger({ node: selfId });

const send = (msg: Record<string, unknown>): void => {
  process.send?.(msg);
};

interface Entry {
  v: number;
  ts: number;
  sender: number;
  p: Uint8Array;
}

/** The in-memory "store": one log per shard (mode log), with the state-transfer hooks. */
const logs = new Map<string, Entry[]>();
const logOf = (name: string): Entry[] => {
  let l = logs.get(name);
  if (!l) logs.set(name, (l = []));
  return l;
};
const entryBytes = (e: Entry): number => 24 + e.p.byteLength;
const hooks: StateTransferHooks = {
  async logTail(name, after, to, cursor, chunkBytes) {
    const l = logOf(name);
    if (after >= 0 && !l.some((e) => e.v === after)) return null;
    const { entries, next } = memoryLogChunk(l, after, to, cursor, chunkBytes, entryBytes);
    return { bytes: pack(entries), next };
  },
  async stateAt(name, version, cursor, chunkBytes) {
    const { entries, next } = memoryLogChunk(logOf(name), -1, version, cursor, chunkBytes, entryBytes);
    return { bytes: pack(entries), next };
  },
  async install(name, t: StateTransfer) {
    const entries = unpack(t.bytes) as Entry[];
    const l = logOf(name);
    if (t.kind === 'state' && t.first) l.splice(0, l.length);
    else if (t.first) {
      // what an interrupted earlier tail installed goes (the new one brings it again)
      const cut = l.findIndex((e) => e.v > t.fromVersion);
      if (cut >= 0) l.length = cut;
    }
    l.push(...entries.filter((e) => e.v > (l[l.length - 1]?.v ?? -1)));
  },
};

// Bench counters: deliveries from the measurement window on.
let measuring = false;
let measuredCount = 0;
let measuredBytes = 0;
const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
/** The send time in a bench payload's first 8 bytes (float64 LE); payloads are Buffers or plain Uint8Arrays. */
const stampF64 = new Float64Array(1);
const stampBytes = new Uint8Array(stampF64.buffer);
const stampOf = (p: Uint8Array): number => {
  for (let i = 0; i < 8; i++) stampBytes[i] = p[i]!;
  return stampF64[0]!;
};
// CLOCK_MONOTONIC in µs (shared by the processes of one machine), without BigInt arithmetic.
const nowUs = (): number => {
  const [s, ns] = process.hrtime();
  return s * 1e6 + ns / 1000;
};

/**
 * `driver` with its link events also reported to `observer` before the core sees them (the tests check
 * that a calm start has no flaps). Wraps the listener, so it works for any driver: under fabric it reports
 * the fabric links the core sees, not the control links below them.
 */
function observeLinks(driver: TransportDriver, observer: Pick<DriverListener, 'linkUp' | 'linkDown'>): TransportDriver {
  return {
    selfId: driver.selfId,
    start: (listener) =>
      driver.start({
        frame: (from, frame) => listener.frame(from, frame),
        linkUp: (peer, incarnation) => {
          observer.linkUp(peer, incarnation);
          listener.linkUp(peer, incarnation);
        },
        linkDown: (peer) => {
          observer.linkDown(peer);
          listener.linkDown(peer);
        },
      }),
    setPeers: (peers) => driver.setPeers(peers),
    push: (to, parts) => driver.push(to, parts),
    flush: () => driver.flush(),
    close: () => driver.close(),
  };
}

let tcp: TcpDriver | undefined;
const choice = parseTransport(values.transport === undefined ? undefined : JSON.parse(values.transport));
const transport = createTransportDriver(choice, {
  selfId,
  log,
  tcpDriver: () =>
    (tcp = new TcpDriver({
      selfId,
      incarnation: Number(process.hrtime.bigint() % 2_000_000_000n) + 1,
      groupName: config.groupName,
      listenHost: me.host,
      listenPort: me.port,
      log,
    })),
});
const driver = observeLinks(transport, {
  linkUp: (peer, incarnation) => send({ ev: 'linkUp', peer, incarnation }),
  linkDown: (peer) => send({ ev: 'linkDown', peer }),
});
/** The data plane's native counters (fabric only), reported with digests and bench results. */
const fabricStats = (): Record<string, unknown> => (transport instanceof FabricDriver ? { fabric: transport.stats() } : {});
const member = new GroupMember({
  config,
  selfId,
  driver,
  storage: new MemoryTransportStorage(() => {
    const ends: Record<string, { version: number; timestampUs: number }> = {};
    for (const [name, l] of logs) if (l.length > 0) ends[name] = { version: l[l.length - 1]!.v, timestampUs: l[l.length - 1]!.ts };
    return ends;
  }),
  stateTransfer: hooks,
  log,
  startMode: values.join ? 'join' : 'form',
  events: {
    view: () => reportView(),
    stopped: (kind, reason) => send({ ev: 'stopped', kind, reason }),
    fatal: (err) => {
      send({ ev: 'fatal', message: err.message });
      setTimeout(() => process.exit(3), 50);
    },
  },
});

for (const shard of member.shards) {
  const persisted = (s: ReplicatedShard, batch: readonly Delivered[]): void => {
    // Memory is the durable medium here: persisted as soon as applied.
    const v = batch[batch.length - 1]!.version;
    setImmediate(() => {
      if (s.active && v <= s.frontiers.deliveredVersion) s.reportPersisted(v);
    });
  };
  shard.setListener({
    deliver: (batch) => {
      if (mode === 'log') {
        const l = logOf(shard.name);
        for (const d of batch) l.push({ v: d.version, ts: d.timestampUs, sender: d.sender, p: Buffer.from(d.payload) });
      } else if (measuring) {
        const now = nowUs();
        for (const d of batch) {
          measuredCount++;
          measuredBytes += d.payload.length;
          const sentUs = stampOf(d.payload);
          if (sentUs > 0) histogram.recordValue(Math.max(1, now - sentUs));
        }
      }
      persisted(shard, batch);
    },
    frontiers: () => {},
    writable: () => {
      wake();
      scheduleRetry(shard);
    },
    // A shard turning active after its state transfer is reported like a view change.
    viewChanged: () => {
      reportView();
      scheduleRetry(shard);
    },
    // Payloads this member accepted but will never see delivered (it left the shard): like a client,
    // send them again once it orders the shard again (whether or not a pump still runs).
    dropped: (payloads) => {
      send({ ev: 'dropped', shard: shard.name, count: payloads.length });
      retryOf(shard).push(...payloads);
      scheduleRetry(shard);
      wake();
    },
  });
}

function reportView(): void {
  const view = member.view;
  if (!view) return;
  send({
    ev: 'view',
    vid: view.vid,
    members: view.members.map((m) => m.id),
    active: member.shards.filter((s) => s.active).map((s) => s.name),
    atUs: nowUs(),
  });
}

/** Payloads dropped when this member left a shard, to send again (what a retrying client does). */
const retries = new Map<ReplicatedShard, Uint8Array[]>();
const retryOf = (shard: ReplicatedShard): Uint8Array[] => {
  let r = retries.get(shard);
  if (!r) retries.set(shard, (r = []));
  return r;
};
/** Sends what waits for a retry while the shard takes it. */
function drainRetry(shard: ReplicatedShard): void {
  const retry = retryOf(shard);
  while (retry.length > 0 && shard.active) {
    let ok = false;
    try {
      ok = shard.send(retry[0]!);
    } catch {
      ok = false;
    }
    if (!ok) break;
    retry.shift();
  }
}
/** Drains outside the core's callbacks (writable and viewChanged call again while anything is left). */
function scheduleRetry(shard: ReplicatedShard): void {
  if (retryOf(shard).length > 0) setImmediate(() => drainRetry(shard));
}
let waiting: (() => void) | null = null;
function wake(): void {
  const w = waiting;
  waiting = null;
  w?.();
}

/** Send payloads as fast as the window allows until `stop()` says so. */
async function pump(shard: ReplicatedShard, size: number, stop: (sent: number) => boolean, stamp: boolean): Promise<number> {
  let sent = 0;
  const header = Buffer.alloc(Math.max(size, 16));
  while (!stop(sent)) {
    if (!shard.active) {
      await new Promise((r) => setTimeout(r, 20));
      continue;
    }
    drainRetry(shard);
    // Send a burst, then yield so the turn ends and the burst leaves as one batch.
    let burst = 0;
    const stampUs = nowUs(); // one send time per burst: the burst leaves as one batch
    while (burst < 4096 && !stop(sent)) {
      const payload = Buffer.allocUnsafe(size);
      if (stamp && size >= 8) payload.writeDoubleLE(stampUs, 0);
      else header.copy(payload, 0, 0, Math.min(size, header.length));
      if (!stamp) payload.write(`${selfId}:${sent}:`, 0);
      let ok = false;
      try {
        ok = shard.send(payload);
      } catch {
        ok = false;
      }
      if (!ok) break;
      sent++;
      burst++;
    }
    if (burst === 0) await new Promise<void>((r) => ((waiting = r), setTimeout(wake, 50)));
    else await new Promise((r) => setImmediate(r));
  }
  return sent;
}

process.on('message', (raw: unknown) => {
  const m = raw as Record<string, unknown>;
  const shard = typeof m.shard === 'string' ? member.shard(m.shard) : member.shards[0]!;
  switch (m.cmd) {
    case 'stream': {
      const size = Number(m.size ?? 64);
      const count = Number(m.count ?? Infinity);
      const endUs = m.seconds !== undefined ? nowUs() + Number(m.seconds) * 1e6 : Infinity;
      void pump(shard, size, (n) => n >= count || nowUs() >= endUs, false).then((sent) => send({ ev: 'streamed', sent }));
      return;
    }
    case 'digest': {
      const out: Record<string, { entries: number; last: number; digest: string; perSender: Record<number, number> }> = {};
      for (const [name, l] of logs) {
        const h = createHash('sha256');
        const perSender: Record<number, number> = {};
        for (const e of l) {
          h.update(String(e.v));
          h.update(e.p);
          perSender[e.sender] = (perSender[e.sender] ?? 0) + 1;
        }
        out[name] = { entries: l.length, last: l[l.length - 1]?.v ?? -1, digest: h.digest('hex'), perSender };
      }
      send({ ev: 'digest', shards: out, vid: member.view?.vid ?? -1, ...fabricStats() });
      return;
    }
    case 'bench': {
      const size = Number(m.size);
      const warmupUs = Number(m.warmupSeconds ?? 1) * 1e6;
      const runUs = Number(m.seconds) * 1e6;
      const start = nowUs();
      let cpuAtStart = process.cpuUsage();
      let viewAtStart = member.view?.vid ?? -1;
      setTimeout(() => {
        measuring = true;
        measuredCount = 0;
        measuredBytes = 0;
        histogram.reset();
        cpuAtStart = process.cpuUsage();
        viewAtStart = member.view?.vid ?? -1;
      }, warmupUs / 1000);
      const measureStart = start + warmupUs;
      setTimeout(() => {
        measuring = false;
        const seconds = (nowUs() - measureStart) / 1e6;
        const cpu = process.cpuUsage(cpuAtStart);
        send({
          ev: 'bench',
          delivered: measuredCount,
          bytes: measuredBytes,
          seconds,
          p50: histogram.getValueAtPercentile(50),
          p99: histogram.getValueAtPercentile(99),
          cpuUserPct: Math.round((cpu.user / 1e6 / seconds) * 100),
          cpuSystemPct: Math.round((cpu.system / 1e6 / seconds) * 100),
          viewChanges: (member.view?.vid ?? -1) - viewAtStart,
          ...fabricStats(),
        });
      }, (warmupUs + runUs) / 1000);
      if (m.send) void pump(shard, size, () => nowUs() >= start + warmupUs + runUs, true);
      return;
    }
    case 'describe':
      send({ ev: 'describe', state: member.describe(), retryQueued: [...retries.values()].reduce((n, r) => n + r.length, 0) });
      return;
    case 'exit':
      void member.close().then(() => process.exit(0));
      return;
  }
});

// The parent is gone (its IPC channel closed): nobody will stop this member, so it stops itself.
process.on('disconnect', () => void member.close().finally(() => process.exit(0)));

await member.start();
send({ ev: 'ready', port: tcp!.port });
