import type { Command } from 'commander';
import type { SquallClient } from '../client/index.js';

/** What every command shares: the global options, the client (made on first use), and the output streams. */
/** Attempts of a CLI request: a person at a terminal wants a wrong URL or a down node reported in a second or so. */
const CLI_ATTEMPTS_MAX = 4;

export class CliContext {
  private clientInstance: SquallClient | undefined;

  constructor(private readonly program: Command) {}

  get json(): boolean {
    return this.program.opts<{ json?: boolean }>().json === true;
  }

  get url(): string {
    return this.program.opts<{ url: string }>().url;
  }

  /** Whether key-bound requests go straight to a member of the key's shard (--no-routing: all to --url). */
  get routing(): boolean {
    return this.program.opts<{ routing: boolean }>().routing;
  }

  /**
   * The client, loaded on first use so that --help and usage errors do not pay for loading undici. Pointed at
   * a cluster it routes: the first key-bound request reads /v1/cluster and the key's pool (two small GETs),
   * then goes to a member of the key's shard; a single node (a one-member layout) gets every request.
   */
  async client(): Promise<SquallClient> {
    if (this.clientInstance === undefined) {
      const { SquallClient } = await import('../client/index.js');
      this.clientInstance = new SquallClient({ url: this.url, connections: 2, routing: this.routing, retryAttemptsMax: CLI_ATTEMPTS_MAX });
    }
    return this.clientInstance;
  }

  out(data: string | Uint8Array): void {
    process.stdout.write(data);
  }

  err(text: string): void {
    process.stderr.write(text);
  }

  async close(): Promise<void> {
    await this.clientInstance?.close();
  }
}
