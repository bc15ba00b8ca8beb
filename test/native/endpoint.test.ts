// In-process checks of the addon surface: loading, config, blobs, bounds, watches, retirement, cleanup.
// (Cross-process behaviour is in rows/ring/failure/shm-cleanup.test.ts.)
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { FabricUnavailableError, loadFabricAddon, WRITE_PEER_DEAD } from '../../src/transport/fabric/addon.js';
import { fabricConfig } from '../../src/transport/fabric/config.js';
import { FabricEndpoint } from '../../src/transport/fabric/endpoint.js';
import { addonReady, withDeadline, TEST_PROVIDERS, TEST_SHM_PREFIX } from './fixtures/harness.js';

t.test('config: defaults, and every bad field named', async (t) => {
  const c = fabricConfig({ provider: 'shm' });
  t.equal(c.host, '127.0.0.1');
  t.equal(c.writeTimeoutMs, 5000);
  t.equal(c.blockSizeBytes, 1 << 20);
  t.throws(() => fabricConfig({ provider: 'sockets' as 'shm' }), /provider/);
  t.throws(() => fabricConfig({ provider: 'tcp', writeTimeoutMs: -1 }), /writeTimeoutMs/);
  t.throws(() => fabricConfig({ provider: 'tcp', shmPrefix: 'a/b' }), /shmPrefix/);
  t.throws(() => fabricConfig({ provider: 'tcp', bogus: 1 } as never), /bogus|unrecognized/i);
});

t.test('loading: a missing or broken addon is a clear FabricUnavailableError', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sqaddon-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.throws(() => loadFabricAddon(join(dir, 'missing.node')), { name: 'FabricUnavailableError', message: /not built.*libfabric-dev.*npm run build:native/ });
  writeFileSync(join(dir, 'broken.node'), 'not a shared object');
  const err = t.throws(() => loadFabricAddon(join(dir, 'broken.node')));
  t.ok(err instanceof FabricUnavailableError && /failed to load.*libfabric1/.test(err.message), 'a broken build says so');
});

/** Opens two endpoints in this process, wired to each other, each with region 1 of `size` bytes. */
function pair(t: Test, provider: 'shm' | 'tcp' | 'net', size = 4096) {
  const config = fabricConfig({ provider, shmPrefix: TEST_SHM_PREFIX, writeTimeoutMs: 1000 });
  const a = FabricEndpoint.open(config);
  const b = FabricEndpoint.open(config);
  t.teardown(() => {
    a.close();
    b.close();
  });
  const aMem = a.registerRegion(1, size);
  const bMem = b.registerRegion(1, size);
  a.addPeer(2, b.endpointBlob());
  b.addPeer(1, a.endpointBlob());
  a.addRemoteRegion(2, b.regionBlob(1));
  b.addRemoteRegion(1, a.regionBlob(1));
  return { a, b, aMem, bMem };
}

/** Resolves on the next call of the returned trigger (bounded). */
function nextCall(what: string): { trigger: () => void; called: Promise<void> } {
  let trigger!: () => void;
  const called = new Promise<void>((resolve) => (trigger = resolve));
  return { trigger, called: withDeadline(called, 10_000, what) };
}

if (addonReady(t)) {
  t.test('cleanupStaleShm removes only files of processes that are gone', async (t) => {
    const addon = loadFabricAddon();
    const dir = mkdtempSync(join(tmpdir(), 'sqshm-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const parentStat = readFileSync(`/proc/${process.ppid}/stat`, 'utf8');
    const parentStart = parentStat.slice(parentStat.lastIndexOf(')') + 2).split(' ')[19];
    const me = addon.processIdentity();
    const files = {
      dead: 'pfx-4194303-1-0:0', // beyond pid_max on this kernel: no such process
      reused: `pfx-${process.ppid}-1-0:0`, // live pid, other start time: the pid was reused
      live: `pfx-${process.ppid}-${parentStart}-0:0`,
      mine: `pfx-${me.pid}-${me.startTicks}-3:0`,
      otherPrefix: 'pfxother-4194303-1-0:0',
      unparsable: 'pfx-abc:0',
    };
    for (const f of Object.values(files)) writeFileSync(join(dir, f), '');
    const removed = addon.cleanupStaleShm('pfx', dir).sort();
    t.same(removed, [files.dead, files.reused].sort(), 'dead and reused-pid files removed');
    t.same(readdirSync(dir).sort(), [files.live, files.mine, files.otherPrefix, files.unparsable].sort(), 'the rest untouched');
  });

  for (const provider of TEST_PROVIDERS) {
    t.test(`endpoint basics over ${provider}`, async (t) => {
      const { a, b, aMem, bMem } = pair(t, provider);
      t.ok(a.provider.startsWith(provider), `provider ${a.provider}`);
      t.equal(aMem.byteLength, 4096);

      // A write lands in the peer's ArrayBuffer and its watch fires (the watch also fires once at creation).
      const seen = nextCall('watch to see the write');
      b.watch(1, 64, () => new Uint8Array(bMem)[64] === 7 && seen.trigger());
      new Uint8Array(aMem).fill(7, 64, 128);
      t.equal(a.write(2, 1, 64, 1, 64, 64) === WRITE_PEER_DEAD, false, 'write accepted');
      await seen.called;
      t.same([...new Uint8Array(bMem, 64, 64)], Array(64).fill(7), 'bytes arrived unchanged, no copy needed to read them');

      // put() writes the same range into each listed peer's copy.
      const back = nextCall('put to land');
      a.watch(1, 256, () => new BigUint64Array(aMem)[32] === 99n && back.trigger());
      new BigUint64Array(bMem)[32] = 99n;
      t.equal(b.put(1, 256, 8, Uint32Array.of(1)), 0, 'no dead peers');
      await back.called;
      t.equal(new BigUint64Array(aMem)[32], 99n);

      // Bounds and ids are checked before anything is posted.
      t.throws(() => a.write(2, 1, 4090, 1, 0, 64), { name: 'TypeError', message: /remote range out of region/ });
      t.throws(() => a.write(2, 1, 0, 1, 4090, 64), { name: 'TypeError', message: /local range out of region/ });
      t.throws(() => a.write(9, 1, 0, 1, 0, 8), { name: 'TypeError', message: /unknown peer 9/ });
      t.throws(() => a.write(2, 5, 0, 1, 0, 8), /peer 2 has no region 5/);
      t.throws(() => a.watch(1, 3, () => {}), /8-byte aligned/);
      t.throws(() => a.registerRegion(1, 4096), /already registered/);
      t.throws(() => a.registerRegion(3, 0), /out of range/);
      t.throws(() => a.addPeer(3, b.regionBlob(1)), /not an endpoint blob/);
      t.throws(() => a.addPeer(2, b.endpointBlob()), /already added and alive/);

      const st = a.stats();
      t.ok(st.writesPosted >= 1 && st.writesCompleted >= 1, 'stats count the writes');
      t.equal(st.regions, 1);
      t.equal(st.peers, 1);
      // shm: the endpoint file's layout was recognised, so locks left by dead processes can be released.
      t.equal(st.shmLockRecovery, provider === 'shm', 'shm lock recovery available exactly on shm');
      t.equal(st.shmLocksReleased, 0, 'no lock released among live processes');

      // Retiring a region detaches its ArrayBuffer and keeps its id from being reused.
      const view = new Uint8Array(aMem);
      a.retireRegion(1);
      t.equal(aMem.byteLength, 0, 'ArrayBuffer detached');
      t.equal(view.length, 0, 'views read as empty');
      t.throws(() => a.write(2, 1, 0, 1, 0, 8), /unknown or retired local region 1/);
      t.throws(() => a.registerRegion(1, 4096), /ids are not reused/);
      t.ok(a.stats().reservedBytes >= 4096, 'the address range stays reserved');

      // A closed endpoint detaches everything and refuses calls.
      b.close();
      t.equal(bMem.byteLength, 0, 'close() detaches the buffers');
      t.throws(() => b.endpointBlob(), /closed/);
    });
  }

  t.test('endpoints of different providers refuse each other', async (t) => {
    const shm = FabricEndpoint.open(fabricConfig({ provider: 'shm', shmPrefix: TEST_SHM_PREFIX }));
    const tcp = FabricEndpoint.open(fabricConfig({ provider: 'tcp' }));
    t.teardown(() => {
      shm.close();
      tcp.close();
    });
    t.throws(() => tcp.addPeer(1, shm.endpointBlob()), /another fabric provider/);
  });

  t.test('a peer that closes is reported to its writer, and writes to it are dropped', async (t) => {
    const { a, b, aMem } = pair(t, 'shm');
    const failed = nextCall('failure report');
    let reason = '';
    a.onPeerFailed((peer, why) => {
      if (peer === 2) {
        reason = why;
        failed.trigger();
      }
    });
    b.close();
    new Uint8Array(aMem).fill(1);
    // Keep writing until the failure is noticed (the first writes may still succeed or queue).
    const writer = setInterval(() => a.write(2, 1, 0, 1, 0, 8), 5);
    t.teardown(() => clearInterval(writer));
    await failed.called;
    clearInterval(writer);
    t.ok(reason.length > 0, `reason: ${reason}`);
    t.equal(a.failedPeers().get(2), reason);
    t.equal(a.write(2, 1, 0, 1, 0, 8), WRITE_PEER_DEAD, 'writes to a dead peer are dropped');
    t.equal(a.put(1, 0, 8, Uint32Array.of(2)), 1, 'put counts the dead peer');
  });
}
