/**
 * Fixed-answer Squall nodes for measuring the client's own CPU (bench/client-cpu.ts): plain node:http servers
 * that answer every put with the same write result and every get with the same value, with no store behind
 * them, so the time the client process spends is the client's. They also answer GET /v1/cluster (a layout of
 * `--nodes` members and `--shards` shards of the persistent subgroup 0, `--replicas` members each) and
 * GET /v1/pools/{path} (a persistent pool over those shards), so a routing client sees a cluster.
 *
 * Run as a child process: `node --import tsx bench/fixed-answer.ts --nodes 3 --shards 3 --replicas 3`; it
 * prints one JSON line {"urls":[...]} once every node listens, and stops on SIGTERM or when stdin closes.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import type { ClusterInfo, PoolInfo, WriteResult } from '../src/api/index.js';

const VERSION = 2 ** 32 + 7;
const TIMESTAMP_US = 1_764_072_000_000_000;

export interface FixedAnswerLayout {
  nodes: number;
  shards: number;
  replicas: number;
}

/** Shard s is held by members s, s+1, ... (mod nodes): every member holds `replicas` of the shards. */
export function fixedCluster(urls: readonly string[], layout: FixedAnswerLayout): ClusterInfo {
  const replicas = Math.min(layout.replicas, urls.length);
  return {
    view: 1,
    members: urls.map((http, id) => ({ id, address: http.replace('http://', ''), http, status: 'up' as const })),
    subgroups: [
      {
        type: 'persistent',
        subgroup: 0,
        shards: Array.from({ length: layout.shards }, (_, shard) => ({
          shard,
          members: Array.from({ length: replicas }, (_, j) => (shard + j) % urls.length),
          delivered_version: VERSION,
          persisted_frontier: VERSION,
          stability_frontier_us: TIMESTAMP_US,
        })),
      },
    ],
    leader: 0,
  };
}

function poolJson(path: string, shards: number): string {
  const pool: PoolInfo = {
    path,
    type: 'persistent',
    subgroup: 0,
    shards,
    affinity: null,
    retain: null,
    deleted: false,
    version: VERSION,
    timestamp_us: TIMESTAMP_US,
  };
  return JSON.stringify(pool);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { nodes: { type: 'string', default: '1' }, shards: { type: 'string', default: '1' }, replicas: { type: 'string', default: '3' } },
  });
  const layout: FixedAnswerLayout = { nodes: Number(values.nodes), shards: Number(values.shards), replicas: Number(values.replicas) };
  for (const [name, n] of Object.entries(layout)) {
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a whole number >= 1`);
  }
  const write: WriteResult = {
    key: '/bench/k',
    version: VERSION,
    timestamp_us: TIMESTAMP_US,
    previous_version: VERSION - 1,
    previous_version_by_key: null,
    shard: 0,
    durability: 'persisted',
  };
  const writeBody = Buffer.from(JSON.stringify(write));
  const value = Buffer.alloc(1024, 7);
  let clusterBody = Buffer.alloc(0);
  const servers: Server[] = [];
  for (let i = 0; i < layout.nodes; i++) {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const url = req.url ?? '/';
        if (req.method === 'GET' && url.startsWith('/v1/objects/')) {
          res.writeHead(200, {
            'content-type': 'application/octet-stream',
            'content-length': value.length,
            etag: `"${VERSION}"`,
            'squall-version': VERSION,
            'squall-timestamp-us': TIMESTAMP_US,
          });
          res.end(value);
        } else if (url === '/v1/cluster') {
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': clusterBody.length });
          res.end(clusterBody);
        } else if (req.method === 'GET' && url.startsWith('/v1/pools/')) {
          const body = poolJson(decodeURIComponent(url.slice('/v1/pools'.length)), layout.shards);
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
          res.end(body);
        } else {
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': writeBody.length, etag: `"${VERSION}"` });
          res.end(writeBody);
        }
      });
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  }
  const urls = servers.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`);
  clusterBody = Buffer.from(JSON.stringify(fixedCluster(urls, layout)));
  const stop = (): void => {
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
  process.stdout.write(JSON.stringify({ urls }) + '\n');
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
