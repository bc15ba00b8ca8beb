import { Option, type Command } from 'commander';
import type { PoolInfo, PoolSpec, RetainSpec } from '../api/index.js';
import { countArg, positiveArg, regexArg } from './args.js';
import type { CliContext } from './context.js';
import * as fmt from './format.js';

/** `pools`, `pools create|get|delete`: object pools. */

function retainText(r: RetainSpec | null): string {
  if (!r) return '-';
  const parts = [];
  if (r.versions !== undefined) parts.push(`${r.versions} versions`);
  if (r.seconds !== undefined) parts.push(`${r.seconds} s`);
  return parts.length ? parts.join(', ') : '-';
}

function poolRows(pools: PoolInfo[]): string {
  return fmt.table(
    ['PATH', 'TYPE', 'SUBGROUP', 'SHARDS', 'AFFINITY', 'RETAIN', 'CREATED'],
    pools.map((p) => [p.path, p.type, fmt.num(p.subgroup), fmt.num(p.shards), p.affinity ?? '-', retainText(p.retain), fmt.time(p.timestamp_us)]),
  );
}

function poolDetail(p: PoolInfo): string {
  const rows: [string, string][] = [
    ['path', p.path],
    ['type', p.type],
    ['subgroup', fmt.num(p.subgroup)],
    ['shards', fmt.num(p.shards)],
    ['affinity', p.affinity ?? '-'],
    ['retain', retainText(p.retain)],
    ['version', fmt.num(p.version)],
    ['created', fmt.time(p.timestamp_us)],
    ['deleted', p.deleted ? 'yes' : 'no'],
  ];
  return rows.map(([k, v]) => `${k.padEnd(9)} ${v}`).join('\n') + '\n';
}

export function registerPoolCommands(program: Command, ctx: CliContext): void {
  const pools = program
    .command('pools')
    .summary('list, create, show and delete object pools')
    .description('Object pools: every key lives in the one pool whose path prefixes it. Without a subcommand: list them.')
    .addHelpText(
      'after',
      fmt.examples([
        'squall pools',
        'squall pools create /photos --type persistent --retain-versions 100',
        "squall pools create /cams --type volatile --affinity '^/cams/[^/]+/'",
        'squall pools get /photos',
        'squall pools delete /photos',
      ]),
    );

  pools
    .command('list', { isDefault: true })
    .description('list the pools')
    .addHelpText('after', fmt.examples(['squall pools list', 'squall pools --json']))
    .action(async () => {
      const client = await ctx.client();
      const list = await client.listPools();
      ctx.out(ctx.json ? fmt.json({ pools: list }) : poolRows(list));
    });

  pools
    .command('create')
    .description('create a pool (answers the existing one when it is identical)')
    .argument('<path>', 'the pool path, e.g. /photos')
    .addOption(new Option('--type <type>', 'store type').choices(['persistent', 'volatile']).makeOptionMandatory())
    .option('--subgroup <n>', 'subgroup of that type that holds it', countArg)
    .option('--affinity <regex>', 'keys with the same match land on the same shard', regexArg)
    .option('--retain-versions <n>', 'keep at most this many versions per key', positiveArg)
    .option('--retain-seconds <n>', 'keep history for this many seconds', positiveArg)
    .addHelpText(
      'after',
      fmt.examples([
        'squall pools create /photos --type persistent --retain-versions 100',
        "squall pools create /cams --type volatile --affinity '^/cams/[^/]+/' --retain-seconds 86400",
      ]),
    )
    .action(async (path: string, o: { type: 'persistent' | 'volatile'; subgroup?: number; affinity?: string; retainVersions?: number; retainSeconds?: number }) => {
      const spec: PoolSpec = { type: o.type };
      if (o.subgroup !== undefined) spec.subgroup = o.subgroup;
      if (o.affinity !== undefined) spec.affinity = o.affinity;
      if (o.retainVersions !== undefined || o.retainSeconds !== undefined) {
        spec.retain = {};
        if (o.retainVersions !== undefined) spec.retain.versions = o.retainVersions;
        if (o.retainSeconds !== undefined) spec.retain.seconds = o.retainSeconds;
      }
      const client = await ctx.client();
      const p = await client.createPool(path, spec);
      ctx.out(ctx.json ? fmt.json(p) : poolDetail(p));
    });

  pools
    .command('get')
    .description('show one pool')
    .argument('<path>', 'the pool path')
    .addHelpText('after', fmt.examples(['squall pools get /photos', 'squall pools get /photos --json']))
    .action(async (path: string) => {
      const client = await ctx.client();
      const p = await client.getPool(path);
      ctx.out(ctx.json ? fmt.json(p) : poolDetail(p));
    });

  pools
    .command('delete')
    .description('delete a pool: its objects stay readable by version and time, new writes are refused')
    .argument('<path>', 'the pool path')
    .addHelpText('after', fmt.examples(['squall pools delete /photos']))
    .action(async (path: string) => {
      const client = await ctx.client();
      await client.deletePool(path);
      ctx.out(ctx.json ? fmt.json({ deleted: path }) : `deleted pool ${path}\n`);
    });
}
