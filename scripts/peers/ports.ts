import { createServer, type Server } from 'node:net';

/**
 * Ports free on 127.0.0.1 right now: each one is bound on port 0 (the kernel picks an unused ephemeral port)
 * and all are held open together before being released, so the n ports are distinct. Something else may take
 * a port between release and use; callers that start servers on them check that the server came up.
 */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, host, () => resolve());
      });
    }
    return servers.map((s) => {
      const address = s.address();
      if (address === null || typeof address === 'string') throw new Error('unexpected listen address');
      return address.port;
    });
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}
