/** Entry point of the `squall` command (bin/squall.js loads it through tsx). */
import { EXIT_OK, run } from './program.js';

// A reader that goes away (`squall get ... | head -c 10`) is not an error of ours.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? EXIT_OK);
  throw e;
});

process.exitCode = await run(process.argv.slice(2));
