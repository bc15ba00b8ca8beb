import { createServer } from 'node:net';
import t from 'tap';
import { ephemeralLow, freePorts, portFree } from '../../src/node/ports.js';

t.test('freePorts gives distinct ports below the ephemeral range that can be bound', async (t) => {
  const ports = await freePorts(40);
  t.equal(ports.length, 40);
  t.equal(new Set(ports).size, 40, 'distinct');
  const low = ephemeralLow();
  t.ok(low > 1024, `the ephemeral range starts at ${low}`);
  t.ok(ports.every((p) => p >= 10_000 && p < low), 'drawn below the range the kernel gives outgoing connections');
  for (const p of ports) t.ok(await portFree(p), `port ${p} is free`);
});

t.test('portFree tells a port in use from a free one', async (t) => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  t.equal(await portFree(port), false, 'a listening port is not free');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  t.equal(await portFree(port), true, 'free once closed');
});
