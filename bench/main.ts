/**
 * `npm run bench -- <suite> [options]`: one entry point for every benchmark. Each suite is a module in
 * bench/ exporting `main(argv)`; `--help` after the suite name lists its options.
 */
const suites: Record<string, { module: string; about: string }> = {
  'client-cpu': { module: './client-cpu.js', about: 'CPU the TypeScript client spends per request, against fixed-answer nodes' },
  kv: { module: './kv.js', about: 'key-value workloads against Squall and peer systems (etcd, Redis)' },
  multicast: { module: './multicast.js', about: 'ordered multicast throughput and latency between member processes' },
  scale: { module: './scale.js', about: 'scaling curves: history depth, key count, value size, replicas' },
  fabric: { module: './fabric.js', about: 'raw native data plane (libfabric shm/tcp/net) vs node:net loopback' },
  rejoin: { module: './rejoin.js', about: 'catch-up time of a restarted member that missed writes (state transfer)' },
};

const [suite, ...rest] = process.argv.slice(2);
if (!suite || suite === '--help' || suite === '-h' || !(suite in suites)) {
  const lines = Object.entries(suites).map(([name, s]) => `  ${name.padEnd(10)} ${s.about}`);
  const out = `usage: npm run bench -- <suite> [options]\n\nsuites:\n${lines.join('\n')}\n`;
  if (suite && suite !== '--help' && suite !== '-h') {
    process.stderr.write(`unknown suite '${suite}'\n\n${out}`);
    process.exit(2);
  }
  process.stdout.write(out);
  process.exit(0);
}
const mod = (await import(suites[suite]!.module)) as { main(argv: string[]): Promise<void> };
await mod.main(rest);
