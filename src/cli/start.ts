import { InvalidArgumentError, type Command } from 'commander';
import { portArg, UsageError } from './args.js';
import type { CliContext } from './context.js';
import * as fmt from './format.js';

/** After a clean stop, how long a handle left open (a stray timer or socket) may keep the process alive. */
const STOP_EXIT_GRACE_MS = 2000;

/** `start`: run a node in this process until SIGINT/SIGTERM. */
export function registerStartCommand(program: Command, ctx: CliContext): void {
  program
    .command('start')
    .summary('run a Squall node')
    .description('Run a node in the foreground, serving the HTTP API, until Ctrl-C (SIGINT) or SIGTERM.')
    .option('--data <dir>', 'data directory (LMDB environment)', './data')
    .option('--port <n>', 'HTTP port (0: any free port)', portArg, 8080)
    .option('--host <host>', 'HTTP listen address', '127.0.0.1')
    .option('--config <file>', 'configuration file: a node configuration, or a cluster file (then give --id)')
    .option('--id <n>', 'with a cluster file: the id of the member to start', (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('not a member id (a non-negative integer).');
      return n;
    })
    .addHelpText('after', fmt.examples(['squall start', 'squall start --data /var/lib/squall --port 9090', 'squall start --config cluster.json --id 2 --data ./data/node-2']))
    .action(async (o: { data: string; port: number; host: string; config?: string; id?: number }, cmd: Command) => {
      if (o.id !== undefined && o.config === undefined) {
        throw new UsageError('--id names a member of a cluster: give its cluster file with --config (without one, squall start runs a single node)');
      }
      // Loaded here so that client commands do not load the server.
      const { startNode } = await import('../node/index.js');
      // Flags given on the command line override the config file; their defaults do not (they equal the file's).
      const given = (name: string): boolean => cmd.getOptionValueSource(name) === 'cli';
      const node = await startNode({
        ...(o.config === undefined || given('data') ? { dataDir: o.data } : {}),
        ...(o.config === undefined || given('port') ? { port: o.port } : {}),
        ...(o.config === undefined || given('host') ? { host: o.host } : {}),
        ...(o.config !== undefined ? { configFile: o.config } : {}),
        ...(o.id !== undefined ? { id: o.id } : {}),
      });
      ctx.out(ctx.json ? JSON.stringify({ url: node.url }) + '\n' : `squall listening on ${node.url} (data in ${node.config.dataDir}; dashboard ${node.url}/dashboard)\n`);
      let stopped = false;
      await new Promise<void>((resolve, reject) => {
        let stopping = false;
        const stop = (signal: NodeJS.Signals) => {
          if (stopped) process.exit(process.exitCode ?? 0); // stopped cleanly, waiting out STOP_EXIT_GRACE_MS
          if (stopping) {
            ctx.err(`${signal} again: exiting without a clean stop\n`);
            process.exit(130);
          }
          stopping = true;
          if (!ctx.json) ctx.err(`${signal}: stopping\n`);
          node.close().then(resolve, reject);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
        // Started by a launcher (squall cluster, tests): go when the launcher goes, also when it went while this
        // started (no 'disconnect' comes then: only `connected` is false). The launcher keeps members out of its
        // process group, so its IPC channel is all that ties them to it.
        if (process.env.SQUALL_EXIT_WITH_PARENT === '1' && process.send) {
          const gone = (): void => {
            ctx.err('launcher gone: stopping\n');
            node.close().then(() => process.exit(0), () => process.exit(1));
          };
          if (!process.connected) gone();
          else process.on('disconnect', gone);
        }
      });
      stopped = true;
      if (!ctx.json) ctx.err(`stopped at ${fmt.time(Date.now() * 1000)}\n`);
      setTimeout(() => process.exit(process.exitCode ?? 0), STOP_EXIT_GRACE_MS).unref();
    });
}
