import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * One node process per data directory: a LOCK file holding the owner's pid. A lock left by a process that
 * no longer exists (a crash, SIGKILL) is taken over; a live owner is a clear start-up error.
 */
export class DataDirLock {
  readonly #path: string;

  private constructor(path: string) {
    this.#path = path;
  }

  static acquire(dataDir: string): DataDirLock {
    mkdirSync(dataDir, { recursive: true });
    const path = join(dataDir, 'LOCK');
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx');
        writeSync(fd, String(process.pid));
        closeSync(fd);
        return new DataDirLock(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const owner = DataDirLock.owner(dataDir);
        if (owner !== null) throw new Error(`data directory ${dataDir} is in use by process ${owner}; stop it or pass another --data`);
        rmSync(path, { force: true }); // stale: its owner is gone
      }
    }
    throw new Error(`could not lock data directory ${dataDir}`);
  }

  /** The pid of the live process holding `dataDir`, or null (no lock, or a stale one). */
  static owner(dataDir: string): number | null {
    let text: string;
    try {
      text = readFileSync(join(dataDir, 'LOCK'), 'utf8');
    } catch {
      return null;
    }
    const owner = Number(text.trim());
    return Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner) ? owner : null;
  }

  release(): void {
    rmSync(this.#path, { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
