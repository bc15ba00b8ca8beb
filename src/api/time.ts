/**
 * Parsing of the API's version and time parameters. Times are integer microseconds since the Unix epoch,
 * given either as digits or as RFC 3339 with up to nanosecond fraction (truncated to µs).
 */

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})$/;

/** µs since epoch from digits or RFC 3339; null when the text is neither. */
export function parseTimeUs(text: string): number | null {
  if (/^\d{1,17}$/.test(text)) {
    const n = Number(text);
    return Number.isSafeInteger(n) ? n : null;
  }
  const m = RFC3339.exec(text);
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac, zone] = m as unknown as string[];
  const year = Number(y), month = Number(mo), day = Number(d), hour = Number(h), minute = Number(mi), second = Number(s);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return null;
  let ms = Date.UTC(year, month - 1, day, hour, minute, Math.min(second, 59));
  const check = new Date(ms);
  if (check.getUTCDate() !== day || check.getUTCMonth() !== month - 1) return null;
  if (zone !== 'Z' && zone !== 'z') {
    const sign = zone!.startsWith('-') ? -1 : 1;
    const [zh, zm] = zone!.slice(1).split(':').map(Number) as [number, number];
    if (zh > 23 || zm > 59) return null;
    ms -= sign * (zh * 60 + zm) * 60_000;
  }
  const micro = frac ? Number((frac + '000000').slice(0, 6)) : 0;
  const us = ms * 1000 + micro;
  return Number.isSafeInteger(us) && us >= 0 ? us : null;
}

/** RFC 3339 with microseconds, UTC. */
export function formatTimeUs(us: number): string {
  const ms = Math.floor(us / 1000);
  const iso = new Date(ms).toISOString(); // 2026-11-25T13:50:02.123Z
  const micro = String(us % 1_000_000).padStart(6, '0');
  return `${iso.slice(0, 19)}.${micro}Z`;
}

/** A version parameter: a non-negative safe integer. */
export function parseVersion(text: string): number | null {
  if (!/^\d{1,16}$/.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : null;
}
