import t from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { acquirePeers } from '../../bench/peers-env.js';
import { startEtcd } from '../../scripts/peers/etcd.js';
import { isOurs, spawnDetached, stopProcess } from '../../scripts/peers/process.js';
import { readState, startPeers, stopPeers, type PeersState } from '../../scripts/peers/state.js';
import { requirePeers } from './peers-available.js';

t.test('stop signals only a pid that still runs the command we started', async (t) => {
  const dir = t.testdir();
  const proc = spawnDetached('sleep', ['30'], join(dir, 'sleep.log'), '30');
  t.teardown(() => {
    if (isOurs(proc)) process.kill(proc.pid, 'SIGKILL');
  });
  t.ok(isOurs(proc));
  t.equal(await stopProcess({ ...proc, marker: 'not-its-command' }), 'gone', 'a pid whose command line does not match is left alone');
  t.ok(isOurs(proc), 'still running');
  t.equal(await stopProcess(proc), 'stopped');
  t.notOk(isOurs(proc));
  t.equal(await stopProcess(proc), 'gone', 'stopping twice is harmless');
});

t.test('etcd that does not come up fails with the log of each member', async (t) => {
  // `false` exits at once whatever its arguments: the members never become healthy
  const dir = t.testdir();
  await t.rejects(startEtcd({ baseDir: dir, binary: 'false', readyTimeoutMs: 500 }), /did not become healthy within 500 ms\n--- m0 [^]*--- m2/);
});

t.test('the bench starts its own peers when none run, and stops them by pid', async (t) => {
  if (!requirePeers(t)) return;
  const emptyDir = t.testdir();
  const env = await acquirePeers(['etcd', 'redis'], emptyDir, () => {});
  t.teardown(() => env.release());
  const state = env.state;
  t.match(env.origin, /started by this run/);
  t.equal(state.etcd?.members.length, 3);
  t.equal(state.redis?.replicas.length, 2);
  const ports = [...state.etcd!.members.flatMap((m) => [m.clientPort, m.peerPort]), state.redis!.primary.port, ...state.redis!.replicas.map((r) => r.port)];
  t.equal(new Set(ports).size, ports.length, 'every port distinct');
  t.ok(ports.every((p) => p !== 2379 && p !== 22379 && p !== 32379 && p !== 6379), 'no default ports');

  const health = await request(`${state.etcd!.endpoints[2]}/health`);
  t.same(await health.body.json(), { health: 'true' });
  const primary = new Redis({ port: state.redis!.primary.port, lazyConnect: true });
  await primary.connect();
  t.equal(await primary.config('GET', 'appendfsync').then((r) => (r as string[])[1]), 'always');
  t.equal(await primary.set('k', 'v'), 'OK');
  t.equal(await primary.wait(2, 5000), 2, 'both replicas acknowledge');
  primary.disconnect();

  const pids = all(state);
  t.ok(pids.every(isOurs));
  await env.release();
  t.ok(pids.every((p) => !isOurs(p)), 'every pid stopped');
  t.notOk(existsSync(state.baseDir), 'temporary directory removed');
});

t.test('peers recorded in a state file are found and reused; stop removes data and state', async (t) => {
  if (!requirePeers(t)) return;
  const dir = t.testdir();
  const state = await startPeers({ baseDir: dir, kinds: ['redis'], redis: { replicas: 1 }, persist: true });
  t.teardown(() => stopPeers(state));
  t.same(readState(dir)?.redis?.primary.pid, state.redis!.primary.pid);
  const env = await acquirePeers(['redis'], dir, () => {}, 2);
  t.match(env.origin, /running, from/, 'a primary and 1 replica are 2 copies');
  t.equal(env.state.redis?.primary.port, state.redis!.primary.port);
  await env.release();
  t.ok(isOurs(state.redis!.primary), 'releasing found peers leaves them running');
  await stopPeers(state);
  t.notOk(isOurs(state.redis!.primary));
  t.equal(readState(dir), null, 'state file removed');
  t.same(readdirSync(join(dir, 'redis')).sort(), ['primary.log', 'replica1.log'], 'data removed, logs kept');
});

function all(state: PeersState) {
  return [...(state.etcd?.members ?? []), ...(state.redis ? [state.redis.primary, ...state.redis.replicas] : [])];
}
