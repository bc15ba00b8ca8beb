/**
 * A shared state table in registered memory: one row per member, every member holding a replica of every
 * row; a member writes only its own row and pushes it whole to the others with one one-sided write.
 *
 * Row layout (rowBytes = 8 + payloadBytes + 8):  [head seq u64][payload][tail seq u64]
 *
 * Invariants:
 * - The writer follows the seqlock discipline: head := seq+1 before touching the payload, tail := seq+1
 *   after, then one write of the whole row. A reader copies the payload between reading tail and head and
 *   accepts it only if they are equal, so a row being overwritten (locally by the provider, or by a later
 *   write arriving while the reader copies) is never accepted half old, half new. This relies on a single
 *   write being applied in address order (true of the shm copy and of tcp/net streams; on verbs, of one
 *   RDMA write in practice, as Derecho assumes); a torn row is then rejected, never accepted.
 * - Visibility is judged from these guards only, never from write completions.
 * - Seqs start at 1; a row with tail 0 has never been written.
 */
import { assert } from '../../assert.js';
import type { FabricEndpoint } from './endpoint.js';

export interface GuardedTableOptions {
  /** Group-agreed region id of this table (the same at every member). */
  regionId: number;
  rows: number;
  /** Payload bytes per row (a multiple of 8). */
  rowPayloadBytes: number;
  /** This member's row. */
  myRow: number;
}

export class GuardedTable {
  readonly regionId: number;
  readonly rows: number;
  readonly rowPayloadBytes: number;
  readonly rowBytes: number;
  readonly myRow: number;
  private readonly endpoint: FabricEndpoint;
  private readonly bytes: Uint8Array;
  private readonly words: BigUint64Array;
  private readonly peerRows = new Map<number, number>(); // row -> peer id
  private peerIds = new Uint32Array(0);
  private readonly watchIds: number[] = [];
  private seq = 0n;
  /** Reads rejected because the row was being overwritten (seq guards differed). */
  tornReads = 0;

  static regionBytes(rows: number, rowPayloadBytes: number): number {
    return rows * (rowPayloadBytes + 16);
  }

  constructor(endpoint: FabricEndpoint, options: GuardedTableOptions) {
    const { regionId, rows, rowPayloadBytes, myRow } = options;
    assert(Number.isInteger(rows) && rows >= 1, `table rows must be a positive integer, got ${rows}`);
    assert(rowPayloadBytes > 0 && rowPayloadBytes % 8 === 0, `rowPayloadBytes must be a positive multiple of 8, got ${rowPayloadBytes}`);
    assert(myRow >= 0 && myRow < rows, `myRow ${myRow} outside 0..${rows - 1}`);
    this.endpoint = endpoint;
    this.regionId = regionId;
    this.rows = rows;
    this.rowPayloadBytes = rowPayloadBytes;
    this.rowBytes = rowPayloadBytes + 16;
    this.myRow = myRow;
    const buffer = endpoint.registerRegion(regionId, GuardedTable.regionBytes(rows, rowPayloadBytes));
    this.bytes = new Uint8Array(buffer);
    this.words = new BigUint64Array(buffer);
  }

  regionBlob(): Uint8Array {
    return this.endpoint.regionBlob(this.regionId);
  }

  /** Which peer holds which row (every row but mine); the peer's regionBlob must have been added. */
  setPeer(row: number, peer: number): void {
    assert(row !== this.myRow && row >= 0 && row < this.rows, `bad peer row ${row}`);
    this.peerRows.set(row, peer);
    this.peerIds = Uint32Array.from(this.peerRows.values());
  }

  /** Stops pushing to a row's peer (it left or failed). */
  dropPeer(row: number): void {
    this.peerRows.delete(row);
    this.peerIds = Uint32Array.from(this.peerRows.values());
  }

  /**
   * Changes my row and pushes it to every peer: `fill` writes the payload in place (it sees the previous
   * contents). Returns the row's new seq.
   */
  update(fill: (payload: Uint8Array) => void): bigint {
    const next = this.seq + 1n;
    const headWord = (this.myRow * this.rowBytes) / 8;
    const tailWord = headWord + this.rowBytes / 8 - 1;
    Atomics.store(this.words, headWord, next);
    fill(this.payloadView(this.myRow));
    Atomics.store(this.words, tailWord, next);
    this.seq = next;
    if (this.peerIds.length > 0) this.endpoint.put(this.regionId, this.myRow * this.rowBytes, this.rowBytes, this.peerIds);
    return next;
  }

  /** Pushes my row again unchanged (e.g. to a peer added late). */
  republish(): void {
    if (this.peerIds.length > 0) this.endpoint.put(this.regionId, this.myRow * this.rowBytes, this.rowBytes, this.peerIds);
  }

  /** The seq a row's tail guard shows now (0 = never written). */
  seqOf(row: number): bigint {
    return Atomics.load(this.words, ((row + 1) * this.rowBytes) / 8 - 1);
  }

  /**
   * Copies a row's payload into `out` if the row is consistent; returns its seq, or undefined if it was
   * being overwritten (counted in tornReads) or was never written.
   */
  read(row: number, out: Uint8Array): bigint | undefined {
    assert(out.length >= this.rowPayloadBytes, 'read buffer smaller than a row payload');
    const r = this.readInPlace(row, (payload) => out.set(payload));
    return r?.seq;
  }

  /**
   * Runs `view` over the row's payload in place (no copy) and keeps its result only if the guards show the
   * row did not change meanwhile. `view` must not keep the array past its return.
   */
  readInPlace<T>(row: number, view: (payload: Uint8Array) => T): { seq: bigint; value: T } | undefined {
    assert(row >= 0 && row < this.rows, `row ${row} outside the table`);
    const headWord = (row * this.rowBytes) / 8;
    const tailWord = headWord + this.rowBytes / 8 - 1;
    const tail = Atomics.load(this.words, tailWord);
    if (tail === 0n) return undefined;
    const value = view(this.payloadView(row));
    const head = Atomics.load(this.words, headWord);
    if (head !== tail) {
      this.tornReads++;
      return undefined;
    }
    return { seq: tail, value };
  }

  /** Calls `handler(row)` (on the JS thread) whenever a peer's row tail guard changes. */
  watchRows(handler: (row: number) => void): void {
    for (let row = 0; row < this.rows; row++) {
      if (row === this.myRow) continue;
      const tailOffset = (row + 1) * this.rowBytes - 8;
      this.watchIds.push(this.endpoint.watch(this.regionId, tailOffset, () => handler(row)));
    }
  }

  /** Ends the table: watches removed, the region retired (no peer may write into it any more). */
  retire(): void {
    for (const id of this.watchIds.splice(0)) this.endpoint.unwatch(id);
    this.endpoint.retireRegion(this.regionId);
  }

  private payloadView(row: number): Uint8Array {
    const start = row * this.rowBytes + 8;
    return this.bytes.subarray(start, start + this.rowPayloadBytes);
  }
}
