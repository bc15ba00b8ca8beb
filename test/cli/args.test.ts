import type { Command } from 'commander';
import t from 'tap';
import { countArg, portArg, positiveArg, regexArg, timeArg, urlArg, versionArg } from '../../src/cli/args.js';
import * as fmt from '../../src/cli/format.js';
import { buildProgram } from '../../src/cli/program.js';

t.test('argument parsers accept what the API does and name what they expected otherwise', async (t) => {
  t.equal(versionArg('4294967301'), 4294967301);
  t.throws(() => versionArg('-1'), { code: 'commander.invalidArgument', message: /not a version/ });
  t.throws(() => versionArg('1e3'), { code: 'commander.invalidArgument' });
  t.throws(() => versionArg('99999999999999999'), { code: 'commander.invalidArgument' });
  t.equal(timeArg('1764072000123456'), 1764072000123456);
  t.equal(timeArg('2025-11-25T12:00:00.123456Z'), 1764072000123456);
  t.equal(timeArg('2025-11-25T13:00:00.123456+01:00'), 1764072000123456);
  for (const bad of ['yesterday', '2025-02-30T00:00:00Z', '2025-11-25', '']) {
    t.throws(() => timeArg(bad), { message: /not a time: give RFC 3339/ }, bad);
  }
  t.equal(countArg('0'), 0);
  t.throws(() => countArg('-1'), { message: /non-negative/ });
  t.equal(positiveArg('3'), 3);
  t.throws(() => positiveArg('0'), { message: /positive/ });
  t.equal(portArg('0'), 0);
  t.equal(portArg('65535'), 65535);
  t.throws(() => portArg('65536'), { message: /not a port/ });
  t.equal(urlArg('http://127.0.0.1:8080'), 'http://127.0.0.1:8080');
  t.equal(urlArg('http://localhost:9/'), 'http://localhost:9');
  t.throws(() => urlArg('ftp://x'), { message: /http\(s\)/ });
  t.throws(() => urlArg('http://x/v1'), { message: /no path/ });
  t.throws(() => urlArg('nonsense'), { message: /not a URL/ });
  t.equal(regexArg('^/cams/([^/]+)/'), '^/cams/([^/]+)/');
  t.throws(() => regexArg('(['), { message: /not a usable affinity regular expression/ });
  t.throws(() => regexArg('^/rx/(a+)+$'), { message: /nests quantifiers/ });
});

t.test('human formats: times with µs, tables, values', async (t) => {
  t.equal(fmt.time(1764072000000001), '2025-11-25T12:00:00.000001Z');
  t.equal(fmt.time(null), '-');
  t.equal(fmt.num(4294967301), '4294967301');
  t.equal(fmt.table(['A', 'LONGER'], [['xx', '1'], ['y', '22']]), 'A   LONGER\nxx  1\ny   22\n');
  t.equal(fmt.value(Buffer.from('hi')), '"hi"');
  t.equal(fmt.value(Buffer.from([0, 1])), 'base64:AAE=');
  t.equal(fmt.value(Buffer.from([0xff])), 'base64:/w==', 'not UTF-8');
  t.equal(fmt.value(Buffer.from('x'.repeat(100))).length, 64, 'long values are cut');
});

function helpOf(cmd: Command): string {
  let text = '';
  cmd.configureOutput({ writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
  cmd.outputHelp();
  return text;
}

t.test('every command and subcommand has a description and examples in its --help', async (t) => {
  const { program } = buildProgram();
  const all: Command[] = [];
  const walk = (c: Command) => {
    all.push(c);
    c.commands.forEach(walk);
  };
  walk(program);
  const names = all.map((c) => (c.parent && c.parent !== program ? `${c.parent.name()} ${c.name()}` : c.name()));
  t.same(names.sort(), ['cluster', 'get', 'history', 'ls', 'pools', 'pools create', 'pools delete', 'pools get', 'pools list', 'put', 'rm', 'squall', 'start', 'status', 'watch'].sort());
  for (const c of all) {
    const help = helpOf(c);
    t.ok(c.description().length > 0, `${c.name()}: description`);
    t.match(help, /\nExamples:\n {2}\$ (squall|npm start) /, `${c.name()}: examples`);
  }
  t.match(helpOf(program), /--url <url>[\s\S]*\(default:\s+"http:\/\/127\.0\.0\.1:8080",\s+env: SQUALL_URL\)/);
  t.match(helpOf(program), /--json/);
});
