/**
 * `npm run peers -- install|start|stop|status [--dir DIR]`: the systems the KV bench compares Squall with,
 * run locally: a 3-member etcd cluster and a Redis primary with 2 replicas (AOF fsync always on the
 * primary), on ports chosen free at start. `start` writes DIR/state.json; `stop` stops those pids only.
 */
import { Command, Option } from 'commander';
import { installPeers } from './install.js';
import { defaultPeersDir, peersStatus, readState, startPeers, stopPeers, type PeerKind } from './state.js';

const program = new Command('peers').description('install, start and stop the peer systems for the bench');
const dirOption = () => new Option('--dir <dir>', 'data, logs and state.json of the peers').default(defaultPeersDir);
const onlyOption = () => new Option('--only <kind>', 'start only etcd or only redis').choices(['etcd', 'redis']);

program.command('install').description('apt-get install etcd-server etcd-client redis-server (if missing)').action(() => {
  installPeers((line) => console.log(line));
});

program
  .command('start')
  .description('start a 3-member etcd cluster and a Redis primary with 2 replicas')
  .addOption(dirOption())
  .addOption(onlyOption())
  .option('--etcd-members <n>', 'etcd cluster size', (v) => Number.parseInt(v, 10), 3)
  .option('--redis-replicas <n>', 'number of Redis replicas', (v) => Number.parseInt(v, 10), 2)
  .action(async (opts: { dir: string; only?: PeerKind; etcdMembers: number; redisReplicas: number }) => {
    const existing = readState(opts.dir);
    if (existing && peersStatus(existing).some((s) => s.running)) {
      console.error(`peers already running (state in ${opts.dir}/state.json); run 'npm run peers -- stop' first`);
      process.exitCode = 1;
      return;
    }
    const kinds: PeerKind[] = opts.only ? [opts.only] : ['etcd', 'redis'];
    const state = await startPeers({
      baseDir: opts.dir,
      kinds,
      etcd: { members: opts.etcdMembers },
      redis: { replicas: opts.redisReplicas },
      persist: true,
    });
    if (state.etcd) console.log(`etcd   ${state.etcd.endpoints.join(',')}  (pids ${state.etcd.members.map((m) => m.pid).join(' ')})`);
    if (state.redis) {
      const { primary, replicas } = state.redis;
      console.log(`redis  primary 127.0.0.1:${primary.port} (pid ${primary.pid}), replicas ${replicas.map((r) => `${r.port} (pid ${r.pid})`).join(', ')}`);
    }
    console.log(`state  ${opts.dir}/state.json`);
  });

program
  .command('stop')
  .description('stop, by pid, the peers that start recorded, and remove their data (logs stay)')
  .addOption(dirOption())
  .option('--keep-data', 'keep the data directories')
  .action(async (opts: { dir: string; keepData?: boolean }) => {
    const state = readState(opts.dir);
    if (!state) {
      console.log(`nothing to stop (no ${opts.dir}/state.json)`);
      return;
    }
    await stopPeers(state, opts.keepData === true);
    console.log('stopped');
  });

program
  .command('status')
  .description('show the recorded peers and whether each pid still runs')
  .addOption(dirOption())
  .action((opts: { dir: string }) => {
    const state = readState(opts.dir);
    if (!state) {
      console.log(`no peers recorded (no ${opts.dir}/state.json)`);
      return;
    }
    for (const s of peersStatus(state)) console.log(`${s.name.padEnd(16)} pid ${String(s.pid).padEnd(8)} port ${String(s.port).padEnd(6)} ${s.running ? 'running' : 'not running'}`);
  });

await program.parseAsync(process.argv);
