import type { Command } from 'commander';
import { SquallError } from '../api/errors.js';
import type { CliContext } from './context.js';
import * as fmt from './format.js';

/** Longest a status waits for the node, in all. */
const STATUS_WAIT_MS = 5_000;

/** `status`: the node's health and readiness, and the cluster as it reports it. */
export function registerStatusCommand(program: Command, ctx: CliContext): void {
  program
    .command('status')
    .summary('cluster view, members, shards and frontiers, readiness')
    .description('Show whether the node is up and ready, its view, the members, and every shard with its frontiers.')
    .addHelpText('after', fmt.examples(['squall status', 'squall status --url http://127.0.0.1:8081 --json']))
    .action(async () => {
      const client = await ctx.client();
      // a status is asked for when something is wrong: a stalled node gets STATUS_WAIT_MS, not the client's patience
      const call = { signal: AbortSignal.timeout(STATUS_WAIT_MS) };
      let healthy: boolean, ready: boolean, cluster: Awaited<ReturnType<typeof client.cluster>>;
      try {
        healthy = await client.health(call);
        ready = await client.ready(call);
        cluster = await client.cluster(call);
      } catch (e) {
        if (call.signal.aborted) {
          throw new SquallError('unavailable', `no answer from ${ctx.url} within ${STATUS_WAIT_MS / 1000} s: the node is stalled or overloaded`, { url: ctx.url });
        }
        throw e;
      }
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
