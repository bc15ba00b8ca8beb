/**
 * Which driver carries a member's frames: the cluster config's `transport` entry.
 *   {"kind":"tcp"}                                            the TypeScript TCP driver (default, everywhere)
 *   {"kind":"fabric","provider":"shm"|"tcp"|"net"|"verbs"}    the native data plane (native/), with the TCP
 *                                                             driver kept for links and address exchange
 * Asking for fabric where the addon is not built fails at start-up with the build instructions.
 */
import { z } from 'zod';
import { SquallError } from '../api/errors.js';
import type { Logger } from '../log.js';
import type { TransportDriver } from './driver.js';
import { loadFabricAddon } from './fabric/addon.js';
import { fabricTransportSchema } from './fabric/config.js';
import { FabricDriver } from './fabric/fabric-driver.js';

export const transportSchema = z.discriminatedUnion('kind', [z.object({ kind: z.literal('tcp') }).strict(), fabricTransportSchema]);

export type TransportChoice = z.output<typeof transportSchema>;
export type TransportChoiceInput = z.input<typeof transportSchema>;

/** Validates the `transport` entry (absent: tcp); throws SquallError(bad_parameter) naming the field. */
export function parseTransport(input: unknown = { kind: 'tcp' }): TransportChoice {
  const parsed = transportSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new SquallError('bad_parameter', `transport config: ${issue.path.join('.') || '(root)'}: ${issue.message}`, {
      path: ['transport', ...issue.path.map(String)],
    });
  }
  return parsed.data;
}

/**
 * The driver for a member. `tcpDriver` makes the TCP driver: the whole transport for kind tcp, the control
 * channel under the fabric driver. Throws FabricUnavailableError (with how to build the addon) for fabric
 * when the addon is missing.
 */
export function createTransportDriver(choice: TransportChoice, options: { selfId: number; tcpDriver: () => TransportDriver; log?: Logger }): TransportDriver {
  if (choice.kind === 'tcp') return options.tcpDriver();
  loadFabricAddon();
  const { kind: _kind, ...config } = choice;
  return new FabricDriver({ selfId: options.selfId, config, control: options.tcpDriver(), ...(options.log ? { log: options.log } : {}) });
}
