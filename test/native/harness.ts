/**
 * Starts fabric test groups as real node processes (member.ts) and relays their endpoint and region blobs,
 * the way the group's TCP connection does in the real driver. Every child is killed by pid at teardown,
 * and every wait has a deadline.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { BUILD_HINT, fabricAddonAvailable, loadFabricAddon } from '../../src/transport/fabric/addon.js';
import type { FabricConfigInput } from '../../src/transport/fabric/config.js';
import type { FromMember, Hello, Scenario, ToMember } from './protocol.js';

const memberScript = fileURLToPath(new URL('./member.ts', import.meta.url));

/** Providers the multi-process tests run on (SQUALL_FABRIC_TEST_PROVIDERS=shm,tcp,net to change). */
export const TEST_PROVIDERS = (process.env.SQUALL_FABRIC_TEST_PROVIDERS ?? 'shm,tcp').split(',') as Array<'shm' | 'tcp' | 'net'>;

/** Fails the file with the build instructions when the addon is missing (never skips silently). */
export function addonReady(t: Test): boolean {
  if (fabricAddonAvailable()) return true;
  let why = BUILD_HINT;
  try {
    loadFabricAddon();
  } catch (e) {
    why = (e as Error).message;
  }
  t.fail(`the native fabric addon is required by these tests: ${why}`);
  return false;
}

export interface Member {
  rank: number;
  child: ChildProcess;
  hello: Hello;
  result: Promise<Record<string, unknown>>;
}

export interface Group {
  members: Member[];
  /** 'progress' events: (rank, note, value, reason). */
  events: EventEmitter;
  /** Resolves when `rank` sends a progress note matching `note` (and value, if given). */
  waitFor(rank: number, note: string, value?: number, timeoutMs?: number): Promise<{ value: number; reason?: string }>;
  kill(rank: number): Promise<void>;
  /** Asks every live member to close (unless close is false) and exit, and waits (bounded) for them. */
  stop(close?: boolean): Promise<void>;
}

export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}

export function spawnMember(t: Test): ChildProcess {
  const env = { ...process.env };
  // Without tap's coverage hook (inherited through NODE_OPTIONS), which doubles a child's start-up here.
  delete env.NODE_OPTIONS;
  const child = fork(memberScript, [], { execArgv: ['--import', 'tsx'], env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
  return child;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Starts `n` members (or the given ranks of an n-member group), exchanges their blobs, and starts the
 * scenario everywhere.
 */
export async function startGroup(
  t: Test,
  options: { n: number; config: FabricConfigInput; scenario: Scenario; ranks?: number[]; resultTimeoutMs?: number },
): Promise<Group> {
  const ranks = options.ranks ?? [...Array(options.n).keys()];
  const events = new EventEmitter();
  const resultTimeoutMs = options.resultTimeoutMs ?? 60_000;
  const starting = ranks.map((rank) => {
    const child = spawnMember(t);
    let resolveResult!: (r: Record<string, unknown>) => void;
    let rejectResult!: (e: Error) => void;
    const result = new Promise<Record<string, unknown>>((res, rej) => {
      resolveResult = res;
      rejectResult = rej;
    });
    result.catch(() => {});
    const hello = new Promise<Hello>((resolve, reject) => {
      child.on('message', (raw) => {
        const m = raw as FromMember;
        if (m.op === 'hello') resolve(m.hello);
        else if (m.op === 'progress') events.emit('progress', m.rank, m.note, m.value, m.reason);
        else if (m.op === 'result') resolveResult(m.result);
      });
      child.once('exit', (code, signal) => {
        const e = new Error(`member ${rank} exited (code ${code}, signal ${signal})`);
        reject(e);
        rejectResult(e);
      });
    });
    const start: ToMember = { op: 'start', rank, n: options.n, config: options.config, scenario: options.scenario };
    child.send(start);
    return { rank, child, hello, result };
  });
  const hellos = await withDeadline(Promise.all(starting.map((s) => s.hello)), 30_000, 'member hellos');
  const peers: ToMember = { op: 'peers', hellos };
  for (const s of starting) s.child.send(peers);
  const members: Member[] = starting.map((s, i) => ({
    rank: s.rank,
    child: s.child,
    hello: hellos[i]!,
    result: withDeadline(s.result, resultTimeoutMs, `result of member ${s.rank}`),
  }));
  for (const m of members) m.result.catch(() => {});

  return {
    members,
    events,
    waitFor(rank, note, value, timeoutMs = 30_000) {
      return withDeadline(
        new Promise((resolve) => {
          const on = (r: number, n: string, v: number, reason?: string) => {
            if (r === rank && n === note && (value === undefined || v === value)) {
              events.off('progress', on);
              resolve({ value: v, reason });
            }
          };
          events.on('progress', on);
        }),
        timeoutMs,
        `member ${rank} to report ${note}${value === undefined ? '' : ` ${value}`}`,
      );
    },
    async kill(rank) {
      const m = members.find((x) => x.rank === rank)!;
      if (m.child.pid !== undefined && m.child.exitCode === null && m.child.signalCode === null) process.kill(m.child.pid, 'SIGKILL');
      await withDeadline(exited(m.child), 10_000, `member ${rank} to die`);
    },
    async stop(close = true) {
      for (const m of members) {
        if (m.child.connected) m.child.send({ op: 'exit', close } satisfies ToMember);
      }
      await withDeadline(Promise.all(members.map((m) => exited(m.child))), 15_000, 'members to exit');
    },
  };
}
