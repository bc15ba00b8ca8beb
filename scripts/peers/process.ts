import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Peer server processes: started detached (their own process group, so they outlive the starting process
 * and a Ctrl-C in the terminal does not reach them), logged to a file, and stopped by pid only after
 * checking through /proc that the pid still runs the command we started (pids are reused).
 */

export interface StartedProcess {
  pid: number;
  /** A string that appears in the process's command line and identifies it (its data directory). */
  marker: string;
  logFile: string;
}

export function spawnDetached(binary: string, args: readonly string[], logFile: string, marker: string): StartedProcess {
  if (!args.some((a) => a.includes(marker))) throw new Error(`marker ${marker} must appear in the arguments`);
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(binary, args, { detached: true, stdio: ['ignore', fd, fd] });
    if (child.pid === undefined) throw new Error(`could not start ${binary} (see ${logFile})`);
    child.unref();
    return { pid: child.pid, marker, logFile };
  } finally {
    closeSync(fd);
  }
}

/** The pid is alive and its command line still contains the marker; false for a zombie or a reused pid. */
export function isOurs(proc: Pick<StartedProcess, 'pid' | 'marker'>): boolean {
  try {
    const stat = readFileSync(`/proc/${proc.pid}/stat`, 'utf8');
    // field 3 (after the parenthesised command name) is the state; Z = zombie, X = dead
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
    const cmdline = readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8').split('\0');
    return cmdline.some((arg) => arg.includes(proc.marker));
  } catch {
    return false;
  }
}

export interface StopOptions {
  /** How long to wait after SIGTERM before SIGKILL. */
  termTimeoutMs?: number;
  /** How long to wait for the process to disappear after SIGKILL. */
  killTimeoutMs?: number;
}

/** 'stopped': we signalled it and it exited; 'gone': it was not running (or the pid is no longer ours). */
export async function stopProcess(proc: StartedProcess, options: StopOptions = {}): Promise<'stopped' | 'gone'> {
  const termTimeoutMs = options.termTimeoutMs ?? 10_000;
  const killTimeoutMs = options.killTimeoutMs ?? 5_000;
  if (!isOurs(proc)) return 'gone';
  process.kill(proc.pid, 'SIGTERM');
  if (await waitFor(() => !isOurs(proc), termTimeoutMs, 50)) return 'stopped';
  if (isOurs(proc)) process.kill(proc.pid, 'SIGKILL');
  if (await waitFor(() => !isOurs(proc), killTimeoutMs, 50)) return 'stopped';
  throw new Error(`pid ${proc.pid} (${proc.marker}) did not exit after SIGKILL`);
}

/** Polls cond every intervalMs until it holds (true) or timeoutMs passes (false). */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

