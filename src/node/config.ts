import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { LayoutSchema, StoreLimitsSchema } from '../store/config.js';

/**
 * The node's configuration: one typed object with defaults, validated at start-up. A JSON file (--config)
 * may set any field; command-line flags override the file.
 */
export const NodeConfigSchema = z
  .object({
    /** This node's member id. */
    nodeId: z.number().int().min(0).max(65535).default(0),
    /** Address the HTTP API listens on: loopback unless set otherwise. */
    host: z.string().min(1).default('127.0.0.1'),
    /** HTTP port (0: any free port). */
    port: z.number().int().min(0).max(65535).default(8080),
    /** Where LMDB keeps the node's data (created if missing). */
    dataDir: z.string().min(1).default('./data'),
    /** Shards per subgroup, per pool type. */
    layout: LayoutSchema.default(LayoutSchema.parse({})),
    /** Limits and timings of the store. */
    limits: StoreLimitsSchema.default(StoreLimitsSchema.parse({})),
    http: z
      .object({
        /** Idle keep-alive connections are closed after this. */
        keepAliveTimeoutMs: z.number().int().min(1000).default(65_000),
        /** Time allowed to receive a request's headers. */
        headersTimeoutMs: z.number().int().min(1000).default(60_000),
        /** Time allowed to receive a whole request (0: none; large uploads may need long). */
        requestTimeoutMs: z.number().int().min(0).default(300_000),
        /** Most concurrent connections (0: unlimited). */
        connectionsMax: z.number().int().min(0).default(10_000),
      })
      .strict()
      .default({ keepAliveTimeoutMs: 65_000, headersTimeoutMs: 60_000, requestTimeoutMs: 300_000, connectionsMax: 10_000 }),
  })
  .strict();

export type NodeConfig = z.infer<typeof NodeConfigSchema>;
export type NodeConfigInput = z.input<typeof NodeConfigSchema>;

/** Validates a configuration, throwing an Error that names every bad field. */
export function parseNodeConfig(input: unknown, source = 'configuration'): NodeConfig {
  const r = NodeConfigSchema.safeParse(input);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new Error(`invalid ${source}:\n${lines.join('\n')}`);
  }
  return r.data;
}

export function loadConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read config file ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`config file ${path} is not JSON: ${(e as Error).message}`);
  }
}
