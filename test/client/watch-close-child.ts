/**
 * Child process of watch.test.ts ("close() in a process..."): opens a watch on the node at argv[2], asks
 * for its first change, says "waiting" on stdout, and on a line on stdin closes the client and prints how
 * the pending next() settled. It then has nothing left to do: it exits by itself only if close() left no
 * socket or timer behind.
 */
import { SquallClient } from '../../src/client/index.js';

const client = new SquallClient({ url: process.argv[2]!, routing: false });
const pending = client.watch('/p/').next();
process.stdout.write('waiting\n');
process.stdin.once('data', () => {
  void (async () => {
    await client.close();
    const settled = await pending.then(
      (r) => ({ done: r.done ?? false }),
      (e: unknown) => ({ error: String(e) }),
    );
    process.stdout.write(JSON.stringify(settled) + '\n');
  })();
});
