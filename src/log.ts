import { readFileSync } from 'node:fs';
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/**
 * The one structured logger (pino, JSON lines on stderr). Lines that concern a member, view or shard carry
 * them as fields through child loggers: log.child({ node: 1, view: 3, shard: 'persistent/0/1' }).
 * Level from SQUALL_LOG_LEVEL (default "info"; tests default to "silent" unless set).
 */
export function createLogger(bindings: Record<string, unknown> = {}, level?: LevelWithSilent): Logger {
  const envLevel = process.env.SQUALL_LOG_LEVEL as LevelWithSilent | undefined;
  const inTap = process.env.TAP === '1' || process.env.TAP_CHILD_ID !== undefined;
  return pino(
    { level: level ?? envLevel ?? (inTap ? 'silent' : 'info'), base: { pid: process.pid, ...bindings } },
    pino.destination({ dest: 2, sync: false }),
  );
}

/** The last `lines` lines of a log file, for error messages about a process that wrote it ('(no log)' if unreadable). */
export function logFileTail(logFile: string, lines = 15): string {
  try {
    return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
