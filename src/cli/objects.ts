import { open, stat, writeFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { SquallError, type WriteResult } from '../api/index.js';
import type { PutOptions } from '../client/index.js';
import { UsageError, countArg, positiveArg, timeArg, versionArg } from './args.js';
import type { CliContext } from './context.js';
import * as fmt from './format.js';

/** `put`, `get`, `rm`, `history`, `ls`, `watch`: the object commands. */

/** Reads a stream up to `limitBytes`; more is too_large (the node would refuse it anyway). */
async function readAll(stream: AsyncIterable<Buffer | string>, limitBytes: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of stream) {
    const b = typeof c === 'string' ? Buffer.from(c) : c;
    size += b.length;
    if (size > limitBytes) {
      throw new SquallError('too_large', `${what} is over the limit of ${limitBytes} bytes`, { limit_bytes: limitBytes });
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks, size);
}

async function readFileLimited(path: string, limitBytes: number): Promise<Buffer> {
  let info;
  try {
    info = await stat(path);
  } catch (e) {
    throw new UsageError(`cannot read --file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (!info.isFile()) throw new UsageError(`--file ${path} is not a regular file`);
  if (info.size > limitBytes) {
    throw new SquallError('too_large', `file ${path} of ${info.size} bytes is over the limit of ${limitBytes} bytes`, {
      size_bytes: info.size,
      limit_bytes: limitBytes,
    });
  }
  const fh = await open(path);
  try {
    return await readAll(fh.createReadStream(), limitBytes, `file ${path}`);
  } finally {
    await fh.close();
  }
}

function writeLine(ctx: CliContext, r: WriteResult, verb: string): void {
  if (ctx.json) ctx.out(fmt.json(r));
  else ctx.out(`${verb} ${r.key}  version ${r.version}  at ${fmt.time(r.timestamp_us)}  (${r.durability})\n`);
}

export function registerObjectCommands(program: Command, ctx: CliContext): void {
  program
    .command('put')
    .summary('write a value')
    .description('Write a value to KEY: from the VALUE argument, from --file, or from standard input when neither is given.')
    .argument('<key>', 'the key, e.g. /photos/cat.jpg')
    .argument('[value]', 'the value as text')
    .option('--file <path>', 'read the value from this file')
    .option('--if-match <version>', 'write only if the current version is exactly this', versionArg)
    .option('--if-none-match', 'write only if the key does not exist (or is deleted)')
    .addOption(new Option('--durability <level>', 'what the answer waits for').choices(['delivered', 'persisted']))
    .option('--content-type <type>', 'stored and returned with the value')
    .addHelpText(
      'after',
      fmt.examples([
        'squall put /notes/today "buy milk"',
        'squall put /photos/cat.jpg --file cat.jpg --content-type image/jpeg',
        'echo hello | squall put /notes/greeting --if-none-match',
        'squall put /notes/today "buy bread" --if-match 4294967301 --json',
      ]),
    )
    .action(async (key: string, value: string | undefined, o: { file?: string; ifMatch?: number; ifNoneMatch?: boolean; durability?: 'delivered' | 'persisted'; contentType?: string }) => {
      if (value !== undefined && o.file !== undefined) throw new UsageError('give the value as an argument or with --file, not both');
      if (o.ifMatch !== undefined && o.ifNoneMatch) throw new UsageError('--if-match and --if-none-match exclude each other');
      const client = await ctx.client();
      const limit = client.options.bodySizeBytesMax;
      let body: Uint8Array | string;
      let contentType = o.contentType;
      if (value !== undefined) {
        body = value;
      } else {
        if (o.file !== undefined) body = await readFileLimited(o.file, limit);
        else {
          if (process.stdin.isTTY) ctx.err('reading the value from standard input (end with Ctrl-D)\n');
          body = await readAll(process.stdin, limit, 'standard input');
        }
        contentType ??= 'application/octet-stream';
      }
      const opts: PutOptions = {};
      if (o.ifMatch !== undefined) opts.ifMatch = o.ifMatch;
      if (o.ifNoneMatch) opts.ifNoneMatch = true;
      if (o.durability !== undefined) opts.durability = o.durability;
      if (contentType !== undefined) opts.contentType = contentType;
      writeLine(ctx, await client.put(key, body, opts), 'put');
    });

  program
    .command('get')
    .summary('read a value')
    .description('Read the value of KEY (current, at a version, or as of a time) and write its bytes to standard output.')
    .argument('<key>', 'the key')
    .addOption(new Option('--version <version>', "the key's newest value with version <= this").argParser(versionArg).conflicts('at'))
    .addOption(new Option('--at <time>', "the key's newest value as of this time (RFC 3339 or µs since the epoch)").argParser(timeArg))
    .option('--stable', 'read at or below the global persistence frontier')
    .option('--linearizable', "order the read with the shard's writes")
    .option('--out <file>', 'write the value to this file instead of standard output')
    .addHelpText(
      'after',
      fmt.examples([
        'squall get /notes/today',
        'squall get /notes/today --version 4294967301',
        'squall get /notes/today --at 2026-11-25T13:50:02.123456Z',
        'squall get /photos/cat.jpg --out cat.jpg',
        'squall get /notes/today --json    # metadata, value in base64',
      ]),
    )
    .action(async (key: string, o: { version?: number; at?: number; stable?: boolean; linearizable?: boolean; out?: string }) => {
      const client = await ctx.client();
      const got = await client.get(key, {
        ...(o.version !== undefined ? { version: o.version } : {}),
        ...(o.at !== undefined ? { at: o.at } : {}),
        ...(o.stable ? { stable: true } : {}),
        ...(o.linearizable ? { consistency: 'linearizable' as const } : {}),
      });
      if (o.out !== undefined) await writeFile(o.out, got.value);
      if (ctx.json) {
        ctx.out(
          fmt.json({
            key: got.key,
            version: got.version,
            timestamp_us: got.timestampUs,
            time: fmt.time(got.timestampUs),
            previous_version_by_key: got.previousVersionByKey,
            content_type: got.contentType,
            size: got.value.length,
            ...(o.out === undefined ? { value_base64: got.value.toString('base64') } : { out: o.out }),
          }),
        );
      } else if (o.out === undefined) {
        ctx.out(got.value);
      }
    });

  program
    .command('rm')
    .summary('delete a key')
    .description('Delete KEY: writes a tombstone version; the history stays readable.')
    .argument('<key>', 'the key')
    .option('--if-match <version>', 'delete only if the current version is exactly this', versionArg)
    .addHelpText('after', fmt.examples(['squall rm /notes/today', 'squall rm /notes/today --if-match 4294967301']))
    .action(async (key: string, o: { ifMatch?: number }) => {
      const client = await ctx.client();
      writeLine(ctx, await client.delete(key, o.ifMatch !== undefined ? { ifMatch: o.ifMatch } : {}), 'deleted');
    });

  program
    .command('history')
    .summary("list a key's versions")
    .description('List the versions of KEY, oldest first: version, time, size, and whether it is a delete.')
    .argument('<key>', 'the key')
    .option('--from <version>', 'first version', versionArg)
    .option('--to <version>', 'last version', versionArg)
    .option('--limit <n>', 'list at most this many versions', positiveArg)
    .addHelpText('after', fmt.examples(['squall history /notes/today', 'squall history /notes/today --from 4294967301 --limit 10 --json']))
    .action(async (key: string, o: { from?: number; to?: number; limit?: number }) => {
      const entries = [];
      const pageLimit = Math.min(o.limit ?? 1000, 1000);
      const client = await ctx.client();
      for await (const e of client.historyAll(key, { ...(o.from !== undefined ? { from: o.from } : {}), ...(o.to !== undefined ? { to: o.to } : {}), limit: pageLimit })) {
        entries.push(e);
        if (o.limit !== undefined && entries.length >= o.limit) break;
      }
      if (ctx.json) {
        ctx.out(fmt.json({ key, versions: entries }));
        return;
      }
      ctx.out(
        fmt.table(
          ['VERSION', 'TIME', 'SIZE', 'OP'],
          entries.map((e) => [fmt.num(e.version), fmt.time(e.timestamp_us), e.deleted ? '-' : fmt.num(e.size), e.deleted ? 'delete' : 'put']),
        ),
      );
    });

  program
    .command('ls')
    .summary('list the keys of a pool')
    .description('List the keys of POOL that have a value: now, at a version, or as of a time (one consistent cut).')
    .argument('<pool>', 'the pool path, e.g. /photos')
    .option('--prefix <prefix>', 'only keys starting with this')
    .addOption(new Option('--at <time>', 'as of this time (RFC 3339 or µs since the epoch)').argParser(timeArg).conflicts('version'))
    .addOption(new Option('--version <version>', 'as of this version').argParser(versionArg))
    .option('--stable', 'at or below the global persistence frontier')
    .option('--values', 'show the values too')
    .option('--limit <n>', 'list at most this many keys', positiveArg)
    .addHelpText(
      'after',
      fmt.examples(['squall ls /photos', 'squall ls /photos --prefix /photos/2026/ --values', 'squall ls /photos --at 2026-11-25T13:00:00Z --json']),
    )
    .action(async (pool: string, o: { prefix?: string; at?: number; version?: number; stable?: boolean; values?: boolean; limit?: number }) => {
      const rows = [];
      const client = await ctx.client();
      const listing = client.listAll(pool, {
        ...(o.prefix !== undefined ? { prefix: o.prefix } : {}),
        ...(o.at !== undefined ? { at: o.at } : {}),
        ...(o.version !== undefined ? { version: o.version } : {}),
        ...(o.stable ? { stable: true } : {}),
        ...(o.values ? { values: true } : {}),
        limit: Math.min(o.limit ?? 1000, 1000),
      });
      for await (const k of listing) {
        rows.push(k);
        if (o.limit !== undefined && rows.length >= o.limit) break;
      }
      if (ctx.json) {
        ctx.out(fmt.json({ pool, keys: rows }));
        return;
      }
      const header = ['KEY', 'VERSION', 'TIME', 'SIZE', ...(o.values ? ['VALUE'] : [])];
      ctx.out(
        fmt.table(
          header,
          rows.map((k) => [
            k.key,
            fmt.num(k.version),
            fmt.time(k.timestamp_us),
            fmt.num(k.size),
            ...(o.values ? [k.value === undefined ? '-' : fmt.value(Buffer.from(k.value, 'base64'))] : []),
          ]),
        ),
      );
    });

  program
    .command('watch')
    .summary('follow changes under a prefix')
    .description('Print each change under PREFIX as it happens (one line each, JSON lines with --json), until Ctrl-C.')
    .argument('<prefix>', 'key prefix, e.g. /photos/')
    .option('--from-version <version>', 'start from this version instead of now', versionArg)
    .option('--count <n>', 'stop after this many changes', countArg)
    .addHelpText('after', fmt.examples(['squall watch /photos/', 'squall watch /photos/ --from-version 4294967297 --json --count 10']))
    .action(async (prefix: string, o: { fromVersion?: number; count?: number }) => {
      if (o.count === 0) return;
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        let n = 0;
        const client = await ctx.client();
        const changes = client.watch(prefix, { ...(o.fromVersion !== undefined ? { fromVersion: o.fromVersion } : {}), signal: stop.signal });
        for await (const c of changes) {
          if (ctx.json) ctx.out(JSON.stringify(c) + '\n');
          else ctx.out(`${fmt.time(c.timestamp_us)}  ${c.op.padEnd(6)}  ${c.key}  version ${c.version}  size ${c.size}\n`);
          if (o.count !== undefined && ++n >= o.count) break;
        }
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
