import { Option, type Command } from 'commander';
import { portArg, positiveArg } from './args.js';
import type { CliContext } from './context.js';
import * as fmt from './format.js';

/** `cluster`: a local cluster of member processes on 127.0.0.1, until Ctrl-C. */
export function registerClusterCommand(program: Command, ctx: CliContext): void {
  program
    .command('cluster')
    .summary('run a local cluster of member processes')
    .description(
      'Start a cluster of member processes on this machine (127.0.0.1), each with its data under DIR/node-N and\n' +
        'one cluster file DIR/cluster.json; print their URLs; stop them all cleanly on Ctrl-C (SIGINT) or SIGTERM.\n' +
        'Started again on the same DIR, the same members come back with their data and addresses (DIR/cluster.json).',
    )
    .option('--nodes <n>', 'members', positiveArg, 3)
    .option('--shards <n>', 'shards of the persistent subgroup', positiveArg, 2)
    .option('--replicas <n>', 'replicas per shard (default: min(3, nodes))', positiveArg)
    .option('--data <dir>', 'data directory of the cluster', './data')
    .addOption(new Option('--transport <kind>', 'data plane between members').choices(['tcp', 'fabric']).default('tcp'))
    .option('--provider <name>', 'libfabric provider with --transport fabric (shm, tcp, net, verbs)', 'shm')
    .option('--port <n>', 'HTTP port of member 1; member N listens on port + N - 1 (0: any free ports)', portArg, 8080)
    .addHelpText('after', fmt.examples(['squall cluster', 'squall cluster --nodes 5 --shards 4 --replicas 3 --data /tmp/sq5', 'squall cluster --transport fabric --provider shm --data /tmp/sqf', 'npm start']))
    .action(async (o: { nodes: number; shards: number; replicas?: number; data: string; port: number; transport: 'tcp' | 'fabric'; provider: string }) => {
      const { LocalCluster } = await import('../node/local-cluster.js');
      const cluster = await LocalCluster.plan({
        dataDir: o.data,
        nodes: o.nodes,
        shards: o.shards,
        httpPort: o.port,
        ...(o.transport === 'fabric' ? { transport: { kind: 'fabric' as const, provider: o.provider } } : {}),
        ...(o.replicas !== undefined ? { replicas: o.replicas } : {}),
        stdio: 'inherit',
        env: { SQUALL_LOG_LEVEL: process.env.SQUALL_LOG_LEVEL ?? 'warn' },
      });
      let stopping = false;
      const stop = async (signal: string): Promise<void> => {
        if (stopping) return;
        stopping = true;
        if (!ctx.json) ctx.err(`${signal}: stopping ${cluster.members.size} members\n`);
        await cluster.stopAll();
      };
      const done = new Promise<void>((resolve) => {
        process.on('SIGINT', () => void stop('SIGINT').then(resolve));
        process.on('SIGTERM', () => void stop('SIGTERM').then(resolve));
      });
      try {
        await cluster.startAll();
        await cluster.waitReady();
      } catch (e) {
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
        });
      }
      await done;
    });
}
