import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { runCli, runCliAll } from '../fixtures/run-cli.js';
import { fakeForCli, TIME_RE } from '../fixtures/setup.js';

const { url, client } = await fakeForCli(t);

t.test('ls: table with values, as of a time, and JSON', async (t) => {
  await client.createPool('/ls', { type: 'volatile' });
  const a = await client.put('/ls/a', 'alpha');
  await client.put('/ls/b', Buffer.from([0, 1, 2]));
  await client.put('/ls/c', 'gamma');
  const [table, past, json, prefixed] = await runCliAll([
    [['ls', '/ls', '--values'], { url }],
    [['ls', '/ls', '--at', String(a.timestamp_us)], { url }],
    [['ls', '/ls', '--json'], { url }],
    [['ls', '/ls', '--prefix', '/ls/c', '--limit', '1'], { url }],
  ]);
  const rows = table.out.trimEnd().split('\n');
  t.match(rows[0], /^KEY\s+VERSION\s+TIME\s+SIZE\s+VALUE$/);
  t.match(rows[1], new RegExp(`^/ls/a\\s+${a.version}  ${TIME_RE.source}  5\\s+"alpha"$`));
  t.match(rows[2], /^\/ls\/b\s+\d+\s+\S+\s+3\s+base64:AAEC$/, 'binary values shown as base64');
  t.equal(rows.length, 4);
  t.same(past.out.trimEnd().split('\n').slice(1).map((l) => l.split(/\s+/)[0]), ['/ls/a'], 'as of the first write');
  t.same((JSON.parse(json.out) as { keys: { key: string }[] }).keys.map((k) => k.key), ['/ls/a', '/ls/b', '/ls/c']);
  t.same(prefixed.out.trimEnd().split('\n').slice(1).map((l) => l.split(/\s+/)[0]), ['/ls/c']);
});

t.test('watch prints past and new changes and stops after --count', async (t) => {
  await client.createPool('/w', { type: 'persistent' });
  const w1 = await client.put('/w/a', 'x');
  const w2 = await client.put('/w/b', 'yy');
  const d = await client.delete('/w/a');
  const [json, human] = await runCliAll([
    [['watch', '/w/', '--from-version', String(w1.version), '--count', '3', '--json'], { url }],
    [['watch', '/w/', '--from-version', String(w2.version), '--count', '2'], { url }],
  ]);
  t.equal(json.code, 0, json.stderr);
  const events = json.out.trimEnd().split('\n').map((l) => JSON.parse(l) as { key: string; version: number; op: string; id: string });
  t.same(events.map((e) => [e.key, e.version, e.op]), [['/w/a', w1.version, 'put'], ['/w/b', w2.version, 'put'], ['/w/a', d.version, 'delete']]);
  t.equal(events[0]!.id, `0:${w1.version}`);
  t.equal(human.code, 0, human.stderr);
  t.match(human.out, new RegExp(`^${TIME_RE.source}  put     /w/b  version ${w2.version}  size 2\n${TIME_RE.source}  delete  /w/a  version ${d.version}  size 0\n$`));
});

t.test('a value file that is not there is a usage error; a bad key an API error', async (t) => {
  const dir = t.testdir({});
  await writeFile(join(dir, 'x'), 'x');
  const [missing, bothSources, badKey] = await runCliAll([
    [['put', '/p/k', '--file', join(dir, 'nope')], { url }],
    [['put', '/p/k', 'v', '--file', join(dir, 'x')], { url }],
    [['put', 'no-slash', 'v'], { url }],
  ]);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /^error: cannot read --file .*nope: ENOENT/);
  t.equal(bothSources.code, 2);
  t.match(bothSources.stderr, /^error: give the value as an argument or with --file, not both/);
  t.equal(badKey.code, 1);
  t.match(badKey.stderr, /^error bad_key: /);
});
