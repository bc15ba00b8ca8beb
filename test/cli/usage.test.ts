import { createServer } from 'node:net';
import t from 'tap';
import { FakeSquall } from '../fixtures/fake-squall.js';
import { runCliAll } from '../fixtures/run-cli.js';

const fake = new FakeSquall();
const url = await fake.start();
t.teardown(() => fake.stop());

t.test('usage errors exit 2 with a message; nothing is sent', async (t) => {
  // One of each way a command line can be wrong; every parser's own rules are unit-tested in args.test.ts.
  const before = fake.requests.length;
  const cases: [string[], RegExp][] = [
    [['get', '/p/k', '--version', 'abc'], /option '--version <version>' argument 'abc' is invalid/],
    [['get', '/p/k', '--version', '1', '--at', '2'], /cannot be used with option/],
    [['get'], /missing required argument 'key'/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['put', '/p/k', 'v', '--if-match', '1', '--if-none-match'], /exclude each other/],
    [['pools', 'create', '/x'], /required option '--type <type>' not specified/],
  ];
  for (let i = 0; i < cases.length; i += 3) {
    const batch = cases.slice(i, i + 3);
    const results = await runCliAll(batch.map(([args]) => [args, { url }]));
    results.forEach((r, j) => {
      const [args, message] = batch[j]!;
      t.equal(r.code, 2, `exit 2: squall ${args.join(' ')}`);
      t.match(r.stderr, /^error: /m);
      t.match(r.stderr, message);
      t.equal(r.out, '');
    });
  }
  t.equal(fake.requests.length, before);
});

t.test('--help exits 0 with usage and examples', async (t) => {
  // Every command's help text is checked in-process in args.test.ts; here the real process, end to end.
  const commands = [[], ['get'], ['pools', 'create']];
  const results = await runCliAll(commands.map((c) => [[...c, '--help']]));
  results.forEach((r, j) => {
    const name = commands[j]!.join(' ') || '(top)';
    t.equal(r.code, 0, `${name}: exit 0`);
    t.match(r.out, /^Usage: squall/, `${name}: usage`);
    t.match(r.out, /\nExamples:\n {2}\$ squall /, `${name}: examples`);
  });
});

t.test('the node URL: SQUALL_URL, --url over it, and a node that is not there', async (t) => {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const down = `http://127.0.0.1:${port}`;
  const [viaEnv, override, unreachable] = await runCliAll([
    [['pools', '--json'], { env: { SQUALL_URL: url } }],
    [['--url', url, 'pools', '--json'], { env: { SQUALL_URL: down } }],
    [['get', '/p/k'], { url: down }],
  ]);
  t.equal(viaEnv.code, 0, viaEnv.stderr);
  t.type(JSON.parse(viaEnv.out).pools, Array);
  t.equal(override.code, 0, override.stderr);
  t.equal(unreachable.code, 1);
  t.match(unreachable.stderr, new RegExp(`^error unavailable: cannot reach Squall at ${down.replaceAll('.', '\\.')}: ECONNREFUSED`));
});
