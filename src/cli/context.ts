import type { Command } from 'commander';
import { SquallClient } from '../client/index.js';

/** What every command shares: the global options, the client (made on first use), and the output streams. */
export class CliContext {
  private clientInstance: SquallClient | undefined;

  constructor(private readonly program: Command) {}

  get json(): boolean {
    return this.program.opts<{ json?: boolean }>().json === true;
  }

  get url(): string {
    return this.program.opts<{ url: string }>().url;
  }

  client(): SquallClient {
    this.clientInstance ??= new SquallClient({ url: this.url, connections: 2 });
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
