import type { Command } from 'commander';
import type { CliContext } from './context.js';
import * as fmt from './format.js';

/** `status`: the node's health and readiness, and the cluster as it reports it. */
export function registerStatusCommand(program: Command, ctx: CliContext): void {
  program
    .command('status')
    .summary('cluster view, members, shards and frontiers, readiness')
    .description('Show whether the node is up and ready, its view, the members, and every shard with its frontiers.')
    .addHelpText('after', fmt.examples(['squall status', 'squall status --url http://127.0.0.1:8081 --json']))
    .action(async () => {
      const client = await ctx.client();
      const healthy = await client.health();
      const ready = await client.ready();
      const cluster = await client.cluster();
      if (ctx.json) {
        ctx.out(fmt.json({ url: ctx.url, healthy, ready, cluster }));
        return;
      }
      let text = `node     ${ctx.url}  ${healthy ? 'up' : 'unhealthy'}, ${ready ? 'ready' : 'NOT READY'}\n`;
      text += `view     ${cluster.view}  leader ${cluster.leader}\n\nmembers\n`;
      text += fmt.table(
        ['ID', 'ADDRESS', 'HTTP', 'STATUS'],
        cluster.members.map((m) => [fmt.num(m.id), m.address, m.http, m.status]),
      );
      text += '\nshards\n';
      const rows = cluster.subgroups.flatMap((g) =>
        g.shards.map((s) => [
          g.type,
          fmt.num(g.subgroup),
          fmt.num(s.shard),
          s.members.join(','),
          fmt.num(s.delivered_version),
          fmt.num(s.persisted_frontier),
          fmt.time(s.stability_frontier_us),
        ]),
      );
      text += fmt.table(['TYPE', 'SUBGROUP', 'SHARD', 'MEMBERS', 'DELIVERED', 'PERSISTED', 'STABLE UNTIL'], rows);
      ctx.out(text);
    });
}
