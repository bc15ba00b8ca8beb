import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { runCli, runCliAll } from '../fixtures/run-cli.js';
import { fakeForCli, TIME_RE } from '../fixtures/setup.js';

const { fake, url, client } = await fakeForCli(t);

t.test('get: --json metadata, --version, --at (RFC 3339 and µs), --out', async (t) => {
  const dir = t.testdir({});
  const w1 = await client.put('/p/g', 'one');
  const w2 = await client.put('/p/g', 'two');
  const rfc1 = new Date(w1.timestamp_us / 1000).toISOString().replace('Z', '000Z');
  const out = join(dir, 'value.txt');
  const [meta, byVersion, byRfc, byUs, toFile] = await runCliAll([
    [['get', '/p/g', '--json'], { url }],
    [['get', '/p/g', '--version', String(w1.version)], { url }],
    [['get', '/p/g', '--at', rfc1], { url }],
    [['get', '/p/g', '--at', String(w2.timestamp_us - 1)], { url }],
    [['get', '/p/g', '--out', out], { url }],
  ]);
  t.equal(meta.code, 0, meta.stderr);
  t.same(JSON.parse(meta.out), {
    key: '/p/g',
    version: w2.version,
    timestamp_us: w2.timestamp_us,
    time: new Date(w2.timestamp_us / 1000).toISOString().replace('Z', '000Z'),
    previous_version_by_key: w1.version,
    content_type: 'text/plain; charset=utf-8',
    size: 3,
    value_base64: Buffer.from('two').toString('base64'),
  });
  t.equal(byVersion.out, 'one');
  t.equal(byRfc.out, 'one', 'exactly at the first version time');
  t.equal(byUs.out, 'one', 'one µs before the second version');
  t.equal(toFile.code, 0);
  t.equal(toFile.out, '', 'nothing on stdout with --out');
  t.equal(await readFile(out, 'utf8'), 'two');
  t.match(fake.requests.filter((r) => r.url.includes('/p/g?at='))[0]!.url, /at=\d+/, 'times are sent as µs');
});

t.test('rm, then get says deleted; history shows both', async (t) => {
  await client.put('/p/r', 'x');
  const rm = await runCli(['rm', '/p/r'], { url });
  t.equal(rm.code, 0, rm.stderr);
  const d = fake.objects.get('/p/r')!.at(-1)!;
  t.match(rm.out, new RegExp(`^deleted /p/r  version ${d.version}  at ${TIME_RE.source}  \\(persisted\\)\n$`));
  const [get, history, historyJson] = await runCliAll([
    [['get', '/p/r'], { url }],
    [['history', '/p/r'], { url }],
    [['history', '/p/r', '--json'], { url }],
  ]);
  t.equal(get.code, 1);
  t.match(get.stderr, /^error deleted: /);
  const [p, del] = fake.objects.get('/p/r')!;
  const lines = history.out.trimEnd().split('\n');
  t.match(lines[0], /^VERSION\s+TIME\s+SIZE\s+OP$/);
  t.match(lines[1], new RegExp(`^${p!.version}  ${TIME_RE.source}  1\\s+put$`));
  t.match(lines[2], new RegExp(`^${del!.version}  ${TIME_RE.source}  -\\s+delete$`));
  t.equal(lines.length, 3);
  const parsed = JSON.parse(historyJson.out) as { versions: { version: number; deleted: boolean }[] };
  t.same(parsed.versions.map((v) => [v.version, v.deleted]), [[p!.version, false], [del!.version, true]]);
});
