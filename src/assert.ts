/** An invariant failed: a bug, never a user error. Thrown by assert(). */
export class AssertionFailure extends Error {
  constructor(message: string) {
    super(`assertion failed: ${message}`);
    this.name = 'AssertionFailure';
  }
}

/** TigerBeetle-style invariant check; keep the message specific enough to debug from a log line. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionFailure(message);
}

/** For hot paths: `if (!cond) fail(\`...\`)` builds the message only when the invariant is broken. */
export function fail(message: string): never {
  throw new AssertionFailure(message);
}
