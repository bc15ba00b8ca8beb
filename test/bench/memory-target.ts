import type { KeyValue, KvTarget, OpenOptions, TargetLimits } from '../../bench/target.js';

/**
 * An in-memory versioned target for testing the harness without servers: every write gets the next
 * revision (one per batch), history is kept, getPast answers the value at a revision. `lying` makes
 * getPast answer the current value instead, so tests can check that the harness notices.
 */
export class MemoryTarget implements KvTarget<number> {
  readonly durability = 'memory only';
  readonly readConsistency = { get: 'local', getPast: 'local at a revision' };
  revision = 0;
  opened = 0;
  closed = 0;
  readonly history = new Map<string, { revision: number; value: Uint8Array }[]>();

  constructor(readonly name = 'memory', readonly limits: TargetLimits = {}, private readonly lying = false) {}

  async open(_options: OpenOptions): Promise<void> {
    this.opened++;
  }
  async put(key: string, value: Uint8Array): Promise<number> {
    return this.write([{ key, value }]);
  }
  async putMany(entries: readonly KeyValue[]): Promise<number> {
    if (new Set(entries.map((e) => e.key)).size !== entries.length) throw new Error('duplicate key in batch');
    return this.write(entries);
  }
  async get(key: string): Promise<Uint8Array | null> {
    return this.history.get(key)?.at(-1)?.value ?? null;
  }
  async getPast(key: string, revision: number): Promise<Uint8Array | null> {
    const versions = this.history.get(key) ?? [];
    if (this.lying) return versions.at(-1)?.value ?? null;
    return versions.filter((v) => v.revision <= revision).at(-1)?.value ?? null;
  }
  async close(): Promise<void> {
    this.closed++;
  }
  private write(entries: readonly KeyValue[]): number {
    const revision = ++this.revision;
    for (const e of entries) {
      const list = this.history.get(e.key) ?? [];
      list.push({ revision, value: Uint8Array.from(e.value) });
      this.history.set(e.key, list);
    }
    return revision;
  }
}

/** The same without history or batches, like Redis. */
export class PlainMemoryTarget implements KvTarget<undefined> {
  readonly durability = 'memory only';
  readonly readConsistency = { get: 'local' };
  private readonly map = new Map<string, Uint8Array>();
  constructor(readonly name = 'plain') {}
  async open(): Promise<void> {}
  async put(key: string, value: Uint8Array): Promise<undefined> {
    this.map.set(key, value);
    return undefined;
  }
  async get(key: string): Promise<Uint8Array | null> {
    return this.map.get(key) ?? null;
  }
  async close(): Promise<void> {}
}

/**
 * The same with versions of one key in one request, like Squall's batches: every version of a request
 * gets the same revision (Squall stamps a multicast batch with one time), and a read at it returns the
 * newest of them.
 */
export class VersionedMemoryTarget extends MemoryTarget {
  requests = 0;
  async putVersions(key: string, values: readonly Uint8Array[]): Promise<number[]> {
    this.requests++;
    const revision = ++this.revision;
    const list = this.history.get(key) ?? [];
    for (const value of values) list.push({ revision, value: Uint8Array.from(value) });
    this.history.set(key, list);
    return values.map(() => revision);
  }
}
