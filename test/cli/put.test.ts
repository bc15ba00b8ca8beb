import { join } from 'node:path';
import t from 'tap';
import { runCli, runCliAll } from '../fixtures/run-cli.js';
import { fakeForCli } from '../fixtures/setup.js';

const { fake, url } = await fakeForCli(t);

t.test('put from an argument, from stdin (binary) and from a file', async (t) => {
  const dir = t.testdir({ 'value.bin': Buffer.from([9, 8, 7, 0, 255]) });
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const [arg, stdin, file] = await runCliAll([
    [['put', '/p/arg', 'buy milk'], { url }],
    [['put', '/p/stdin'], { url, stdin: bytes }],
    [['put', '/p/file', '--file', join(dir, 'value.bin'), '--content-type', 'image/x-test', '--durability', 'delivered'], { url }],
  ]);
  for (const r of [arg, stdin, file]) {
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stderr, '');
  }
  const argVersion = fake.objects.get('/p/arg')![0]!;
  t.equal(arg.out, `put /p/arg  version ${argVersion.version}  at ${new Date(argVersion.timestamp_us / 1000).toISOString().slice(0, 23)}000Z  (persisted)\n`);
  t.equal(argVersion.value!.toString(), 'buy milk');
  t.equal(argVersion.contentType, 'text/plain; charset=utf-8');
  t.same([...fake.objects.get('/p/stdin')![0]!.value!], [...bytes], 'stdin bytes stored exactly');
  t.equal(fake.objects.get('/p/stdin')![0]!.contentType, 'application/octet-stream');
  t.same([...fake.objects.get('/p/file')![0]!.value!], [9, 8, 7, 0, 255]);
  t.equal(fake.objects.get('/p/file')![0]!.contentType, 'image/x-test');
  t.match(file.out, /\(delivered\)\n$/);

  const got = await runCli(['get', '/p/stdin'], { url });
  t.equal(got.code, 0);
  t.same([...got.stdout], [...bytes], 'get writes the raw bytes to stdout');
});

t.test('put --json, --if-match and --if-none-match', async (t) => {
  const first = await runCli(['put', '/p/cas', 'v1', '--json'], { url });
  t.equal(first.code, 0, first.stderr);
  const w = JSON.parse(first.out) as { key: string; version: number; timestamp_us: number; durability: string };
  t.equal(w.key, '/p/cas');
  t.equal(w.version, fake.objects.get('/p/cas')![0]!.version);
  const [stale, exists] = await runCliAll([
    [['put', '/p/cas', 'v2', '--if-match', String(w.version + 1)], { url }],
    [['put', '/p/cas', 'v2', '--if-none-match'], { url }],
  ]);
  t.equal(fake.requestsTo('PUT', '/v1/objects/p/cas').filter((r) => r.headers['if-none-match'] === '*').length, 1, 'If-None-Match: * sent');
  t.equal(stale.code, 1);
  t.match(stale.stderr, /^error version_mismatch: /);
  t.equal(stale.out, '');
  t.equal(exists.code, 1);
  t.match(exists.stderr, /^error version_mismatch: /);
  const cas = await runCli(['put', '/p/cas', 'v2', '--if-match', String(w.version)], { url });
  t.equal(cas.code, 0, cas.stderr);
  t.equal(fake.objects.get('/p/cas')!.at(-1)!.value!.toString(), 'v2');
});
