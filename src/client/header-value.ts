import { SquallError, type Durability } from '../api/index.js';

/**
 * Request header values that come from the caller (a content type, a request id, a durability) are checked
 * before anything is sent, so a bad one is a SquallError `bad_parameter` naming the option, not an undici
 * InvalidArgumentError thrown from inside the request. The rule: a non-empty string of printable ASCII and
 * inner spaces or tabs. No control character (CR/LF would split the header), nothing above 0x7E (a header
 * value is bytes, and one client must not send a Latin-1 byte another reads as UTF-8), no leading or
 * trailing blank (a server strips it, so the value it sees is not the one given: for a request id, another id).
 */
const HEADER_VALUE = /^[\x21-\x7e](?:[\t\x20-\x7e]*[\x21-\x7e])?$/;

/** `value` as a header value; throws bad_parameter naming `option` (and the header) when it cannot be one. */
export function checkHeaderArg(value: unknown, option: string, header: string): string {
  if (typeof value === 'string' && HEADER_VALUE.test(value)) return value;
  const shown = typeof value === 'string' ? JSON.stringify(value.length > 80 ? value.slice(0, 80) + '…' : value) : String(value);
  throw new SquallError(
    'bad_parameter',
    `${option} must be a non-empty string of printable ASCII without leading or trailing blanks (it is sent as the ${header} header), got ${shown}`,
    { parameter: option, header },
  );
}

/** A Squall-Durability value: delivered or persisted (bad_parameter otherwise, unsent). */
export function checkDurabilityArg(value: unknown): Durability {
  if (value === 'delivered' || value === 'persisted') return value;
  throw new SquallError('bad_parameter', `durability must be 'delivered' or 'persisted', got ${JSON.stringify(value) ?? String(value)}`, {
    parameter: 'durability',
    header: 'Squall-Durability',
  });
}
