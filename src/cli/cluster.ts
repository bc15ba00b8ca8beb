import { Option, type Command } from 'commander';
import { portArg, positiveArg, UsageError } from './args.js';
import type { CliContext } from './context.js';
import * as fmt from './format.js';

/** `cluster`: a local cluster of member processes on 127.0.0.1, until Ctrl-C. */
export function registerClusterCommand(program: Command, ctx: CliContext): void {
  program
    .command('cluster')
    .summary('run a local cluster of member processes')
    .description(
      'Start a cluster of member processes on this machine (127.0.0.1), each with its data under DIR/node-N and\n' +
        'one cluster file DIR/cluster.json; print their URLs; stop them all cleanly on Ctrl-C (SIGINT) or SIGTERM\n' +
        '(a second one makes them exit at once). Members write their output and logs to stderr.\n' +
        'Started again on the same DIR, the same members come back with their data and addresses (DIR/cluster.json);\n' +
        '--nodes, --shards, --replicas, --port and --transport then must agree with that file, or be left out.',
    )
    .option('--nodes <n>', 'members', positiveArg, 3)
    .option('--shards <n>', 'shards of the persistent subgroup', positiveArg, 2)
    .option('--replicas <n>', 'replicas per shard (default: min(3, nodes))', positiveArg)
    .option('--data <dir>', 'data directory of the cluster', './data')
    .addOption(new Option('--transport <kind>', 'data plane between members').choices(['tcp', 'fabric']).default('tcp'))
    .option('--provider <name>', 'libfabric provider with --transport fabric (shm, tcp, net, verbs)', 'shm')
    .option('--port <n>', 'HTTP port of member 1; member N listens on port + N - 1 (0: any free ports)', portArg, 8080)
    .addHelpText('after', fmt.examples(['squall cluster', 'squall cluster --nodes 5 --shards 4 --replicas 3 --data /tmp/sq5', 'squall cluster --transport fabric --provider shm --data /tmp/sqf', 'npm start']))
    .action(async (o: { nodes: number; shards: number; replicas?: number; data: string; port: number; transport: 'tcp' | 'fabric'; provider: string }, cmd: Command) => {
      const { LocalCluster, LocalClusterMismatchError, LocalClusterOptionsError } = await import('../node/local-cluster.js');
      // Flags given on the command line must agree with an existing cluster file; their defaults need not.
      const flagOf = { nodes: 'nodes', shards: 'shards', replicas: 'replicas', httpPort: 'port', transport: 'transport' } as const;
      const given = (Object.keys(flagOf) as (keyof typeof flagOf)[]).filter((option) => cmd.getOptionValueSource(flagOf[option]) === 'cli');
      let cluster: Awaited<ReturnType<typeof LocalCluster.plan>>;
      try {
        cluster = await LocalCluster.plan({
          dataDir: o.data,
          nodes: o.nodes,
          shards: o.shards,
          httpPort: o.port,
          ...(o.transport === 'fabric' ? { transport: { kind: 'fabric' as const, provider: o.provider } } : {}),
          ...(o.replicas !== undefined ? { replicas: o.replicas } : {}),
          given,
          // stdout is the launcher's (its JSON line with --json); members write theirs and their logs to stderr
          stdio: 'stderr',
          env: { SQUALL_LOG_LEVEL: process.env.SQUALL_LOG_LEVEL ?? 'warn' },
        });
      } catch (e) {
        if (e instanceof LocalClusterOptionsError) throw new UsageError(e.message);
        if (e instanceof LocalClusterMismatchError) {
          const flags = e.differences.map((d) => `--${flagOf[d.option]} ${d.asked} (the file has ${d.inFile})`).join(', ');
          throw new UsageError(
            `${e.file} is the cluster file of an earlier run, and it disagrees with ${flags}. ` +
              `Without ${e.differences.length === 1 ? 'that flag' : 'those flags'} that cluster starts again as it was; for another cluster give another --data.`,
          );
        }
        throw e;
      }
      let stopping = false;
      let forced = false;
      let stopped: Promise<void> | null = null;
      // Members are in their own process group (local-cluster.ts): a Ctrl-C reaches only this process, which
      // stops each member once; a second Ctrl-C passes on to them, and a member already stopping exits at once.
      const stop = (signal: NodeJS.Signals): Promise<void> => {
        if (stopping) {
          if (!forced) ctx.err(`${signal} again: members exit without a clean stop\n`);
          forced = true;
          cluster.signalAll('SIGTERM');
          return stopped!;
        }
        stopping = true;
        if (!ctx.json) ctx.err(`${signal}: stopping ${cluster.members.size} members\n`);
        const all = cluster.stopAll();
        stopped = all;
        return all;
      };
      const done = new Promise<void>((resolve) => {
        process.on('SIGINT', () => void stop('SIGINT').then(resolve));
        process.on('SIGTERM', () => void stop('SIGTERM').then(resolve));
      });
      // A member that exits other than by a clean stop (exit 0) is reported; the launcher then exits 1.
      const unclean: string[] = [];
      try {
        await cluster.startAll();
        await cluster.waitReady();
      } catch (e) {
        if (stopping) {
          await done; // stopped while starting: not a failure to report
          return;
        }
        await cluster.killAll();
        throw e;
      }
      const members = [...cluster.members.values()].map((m) => ({ id: m.id, url: m.url, pid: m.process?.pid ?? null }));
      if (ctx.json) ctx.out(JSON.stringify({ cluster: cluster.configFile, members }) + '\n');
      else {
        ctx.out(`squall cluster of ${members.length} members ready (cluster file ${cluster.configFile})\n`);
        for (const m of members) ctx.out(`  member ${m.id}  ${m.url}  pid ${m.pid}\n`);
        if (members[0]) ctx.out(`dashboard: ${members[0].url}/dashboard (on every member)\n`);
        ctx.out('Ctrl-C stops it.\n');
      }
      for (const m of cluster.members.values()) {
        m.process?.once('exit', (code, signal) => {
          if (!stopping) ctx.err(`member ${m.id} exited (code ${code}, signal ${signal})\n`);
          else if (code !== 0) unclean.push(`member ${m.id} (code ${code}, signal ${signal})`);
        });
      }
      await done;
      if (unclean.length === 0) return;
      if (forced) process.exit(130); // as a member does on a second signal
      throw new Error(`not stopped cleanly: ${unclean.join(', ')}`);
    });
}
