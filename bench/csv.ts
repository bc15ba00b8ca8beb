/** A cell is quoted when it holds a comma, quote or line break (RFC 4180); null is an empty cell. */
function csvCell(value: string | number | null): string {
  if (value === null) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** CSV text with a header line, columns in the given order. */
export function toCsv<Row extends Record<string, string | number | null>>(columns: readonly (keyof Row & string)[], rows: readonly Row[]): string {
  const lines = [columns.map(csvCell).join(','), ...rows.map((r) => columns.map((c) => csvCell(r[c] ?? null)).join(','))];
  return `${lines.join('\n')}\n`;
}
