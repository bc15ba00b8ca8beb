/**
 * PLACEHOLDER in the `client` branch only: the CLI's `squall start` compiles against this signature. The
 * real node (src/node/, on main) replaces this file when the branches are merged.
 */
export interface StartNodeOptions {
  dataDir: string;
  port: number;
  host: string;
  configFile?: string;
}

export interface RunningNode {
  url: string;
  close(): Promise<void>;
}

export async function startNode(_options: StartNodeOptions): Promise<RunningNode> {
  throw new Error('server not merged yet');
}
