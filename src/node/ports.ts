import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';

/**
 * Choosing ports for processes started later (a local cluster, the bench peers, test groups).
 *
 * A port the kernel picks for a listener on port 0 comes from the ephemeral range
 * (net.ipv4.ip_local_port_range), the same range it hands to outgoing connections: released, it can be
 * taken by any connection on the machine before the process meant for it binds it, and that process then
 * fails with EADDRINUSE. So ports are drawn at random below that range (where only listeners that ask for
 * a port by number go), each checked by binding it; all are held together, so they are distinct.
 */

/** Lowest port drawn from. */
const DRAW_LOW = 10_000;
/** Candidates tried per port asked for before giving up. */
const TRIES_PER_PORT = 50;

/** The first port of the kernel's ephemeral range (32768 when it cannot be read). */
export function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

function listen(port: number, host: string): Promise<Server | null> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', (e: NodeJS.ErrnoException) => (e.code === 'EADDRINUSE' || e.code === 'EACCES' ? resolve(null) : reject(e)));
    s.listen(port, host, () => resolve(s));
  });
}

/** `count` distinct ports free on `host` right now (see above); port-0 picks when the range below is too small. */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const high = ephemeralLow();
  const held: Server[] = [];
  try {
    const span = high - DRAW_LOW;
    for (let tries = 0; held.length < count && span >= count * 16 && tries < count * TRIES_PER_PORT; tries++) {
      const s = await listen(DRAW_LOW + Math.floor(Math.random() * span), host);
      if (s) held.push(s);
    }
    while (held.length < count) {
      const s = await listen(0, host);
      if (s) held.push(s);
    }
    return held.map((s) => {
      const a = s.address();
      if (a === null || typeof a === 'string') throw new Error('unexpected listen address');
      return a.port;
    });
  } finally {
    await Promise.all(held.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/** Whether `port` on `host` can be bound right now. */
export async function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  const s = await listen(port, host);
  if (!s) return false;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return true;
}
