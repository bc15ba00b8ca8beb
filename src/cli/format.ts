import { formatTimeUs } from '../api/index.js';

/** Human output of the CLI: aligned tables, times as RFC 3339 with µs, versions as plain numbers. */

export function time(us: number | null | undefined): string {
  return us === null || us === undefined ? '-' : formatTimeUs(us);
}

export function num(n: number | null | undefined): string {
  return n === null || n === undefined ? '-' : String(n);
}

/** Columns separated by two spaces, each as wide as its widest cell; a header row first. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

const decoder = new TextDecoder('utf-8', { fatal: true });
const VALUE_CHARS_SHOWN = 64;

/** A value for a table cell: quoted text when it is printable UTF-8, else base64; long values cut. */
export function value(bytes: Uint8Array): string {
  let text: string | null;
  try {
    text = decoder.decode(bytes);
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x08\x0b-\x1f\x7f]/.test(text)) text = null;
  } catch {
    text = null;
  }
  const shown = text === null ? 'base64:' + Buffer.from(bytes).toString('base64') : JSON.stringify(text);
  return shown.length > VALUE_CHARS_SHOWN ? shown.slice(0, VALUE_CHARS_SHOWN - 1) + '…' : shown;
}

export function json(data: unknown): string {
  return JSON.stringify(data, null, 2) + '\n';
}

/** The "Examples:" block at the end of a command's --help. */
export function examples(lines: readonly string[]): string {
  return '\nExamples:\n' + lines.map((l) => `  $ ${l}`).join('\n') + '\n';
}
