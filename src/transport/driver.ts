/**
 * The data-plane boundary: the one interface between the protocol core (pure state machines in this
 * folder) and whatever moves bytes between members. Three implementations: the TCP driver
 * (tcp-driver.ts), the simulation driver (sim/network.ts, tests), and the native libfabric data plane.
 *
 * What a driver does, and nothing more:
 * - keeps one reliable, FIFO, bidirectional link to each peer it is asked to reach (setPeers / push);
 * - `push(to, parts)`: deliver the bytes of one frame (the concatenation of `parts`) to each member in
 *   `to`, in push order per member. The core uses it for "push these bytes of my row", "push this
 *   multicast batch" and "push this control / P2P message"; the driver does not look inside frames
 *   (the first byte is the frame kind, see wire.ts, if a driver wants to route kinds differently, e.g.
 *   row frames as one-sided writes and batches as sends);
 * - `flush()`: the end of one driver turn; everything pushed since the last flush leaves now. Drivers
 *   may send earlier; the core calls flush once per turn so a driver can coalesce (writev, cork);
 * - reports connection events: `linkUp(peer, incarnation)` once a link is established and the peer has
 *   said who it is, `linkDown(peer)` when an established link broke. After linkDown, frames pushed
 *   before it may or may not have arrived; nothing more arrives on that link. A peer that restarts
 *   comes back with a new incarnation (linkDown for the old one first).
 *
 * What a driver guarantees:
 * - a frame arrives whole or not at all, never reordered with respect to other frames from the same
 *   sender, and never after a linkDown for that link until a new linkUp;
 * - frames pushed to a peer that is not connected yet are kept (up to a named byte bound) and sent once
 *   it connects; connection attempts to a peer that is not up are retried quietly (no linkDown: only an
 *   established link can go down); if the bound is exceeded the queued frames are dropped and linkDown
 *   is reported, so the core never sees a stream with a gap.
 *
 * Ownership of bytes: parts handed to push() are not copied by the core and must not be modified by the
 * driver; the core does not modify them after the call either. A frame handed to `frame()` may be a
 * view into a larger receive buffer: the core may keep subarrays of it (delivered payloads do), so a
 * driver must not reuse that memory afterwards.
 */

/** Where a member listens. */
export interface MemberAddress {
  readonly id: number;
  readonly host: string;
  readonly port: number;
}

/** What a driver reports to the core. Called synchronously from the driver's I/O callbacks. */
export interface DriverListener {
  /** One complete frame from member `from`, in the order `from` pushed it. */
  frame(from: number, frame: Uint8Array): void;
  /** A link to `peer` is established; `incarnation` identifies the peer's process (changes on restart). */
  linkUp(peer: number, incarnation: number): void;
  /** The established link to `peer` broke. */
  linkDown(peer: number): void;
}

export interface TransportDriver {
  /** This member's id. */
  readonly selfId: number;
  /** Start listening / accepting; events go to `listener`. */
  start(listener: DriverListener): Promise<void>;
  /** The members this one may exchange frames with (current view, joiners, contacts). Links to others are closed. */
  setPeers(peers: readonly MemberAddress[]): void;
  /** Queue one frame (the concatenation of `parts`) for each member in `to`; FIFO per member. */
  push(to: readonly number[], parts: readonly Uint8Array[]): void;
  /** End of a turn: everything pushed so far leaves now. */
  flush(): void;
  /** Close every link and stop listening. */
  close(): Promise<void>;
}
