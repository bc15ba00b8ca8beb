/**
 * The `squall` command line: its subcommands, the global options, and exit codes: 0 ok, 1 an API or network
 * error (`error <code>: <message>` on stderr), 2 a usage error (commander's message, or `error: <message>`).
 */
import { Command, CommanderError, Option } from 'commander';
import { SquallError } from '../api/index.js';
import { UsageError, urlArg } from './args.js';
import { CliContext } from './context.js';
import * as fmt from './format.js';
import { registerObjectCommands } from './objects.js';
import { registerClusterCommand } from './cluster.js';
import { registerPoolCommands } from './pools.js';
import { registerStartCommand } from './start.js';
import { registerStatusCommand } from './status.js';

export const EXIT_OK = 0;
export const EXIT_API_ERROR = 1;
export const EXIT_USAGE = 2;

export function buildProgram(): { program: Command; ctx: CliContext } {
  const program = new Command('squall');
  const ctx = new CliContext(program);
  // Settings before the subcommands are added, so that they inherit them.
  program
    .description('Squall: a versioned, replicated key-value object store with reads as of a time.')
    .addOption(new Option('--url <url>', 'the node to talk to').env('SQUALL_URL').default('http://127.0.0.1:8080').argParser(urlArg))
    .option('--json', 'machine-readable output (JSON) for scripts')
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .addHelpText(
      'after',
      fmt.examples([
        'squall start --data ./data',
        'squall pools create /notes --type persistent',
        'squall put /notes/today "buy milk"',
        'squall get /notes/today --at 2026-11-25T13:50:02Z',
        'squall history /notes/today',
        'squall ls /notes --json',
      ]),
    );
  registerStartCommand(program, ctx);
  registerClusterCommand(program, ctx);
  registerObjectCommands(program, ctx);
  registerPoolCommands(program, ctx);
  registerStatusCommand(program, ctx);
  return { program, ctx };
}

/** Runs one command line; resolves to the exit code. */
export async function run(argv: readonly string[]): Promise<number> {
  const { program, ctx } = buildProgram();
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return EXIT_OK;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE; // commander printed it
    if (e instanceof UsageError) {
      ctx.err(`error: ${e.message}\n`);
      return EXIT_USAGE;
    }
    if (e instanceof SquallError) {
      ctx.err(`error ${e.code}: ${e.message}\n`);
      return EXIT_API_ERROR;
    }
    ctx.err(`error: ${(e as Error)?.message ?? String(e)}\n`);
    return EXIT_API_ERROR;
  } finally {
    await ctx.close();
  }
}
