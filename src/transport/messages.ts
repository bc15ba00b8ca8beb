import type { ShardLogEnd } from './storage.js';
import type { MemberInfo, View } from './view.js';

/**
 * Control-plane messages (msgpack in MSG frames): joins, view delivery to joiners, state transfer,
 * total restart. They are requests and answers between two members, not table state.
 */

/** What a joining or restarting member knows about the group's past (to find the newest view and logs). */
export interface RestartSummary {
  /** The newest view this member saved or learnt from a logged ragged trim. */
  readonly views: readonly View[];
  /** Shard name → the last entry of this member's log of it. */
  readonly logEnds: Readonly<Record<string, ShardLogEnd>>;
}

/** What a receiver sends back to get a transfer's next chunk (the donor keeps no state between chunks). */
export interface ChunkRequest {
  readonly kind: 'tail' | 'state';
  readonly to: number;
  readonly lastPayload: number;
  readonly lastTimestampUs: number;
  readonly chunk: number;
  readonly cursor: Uint8Array;
}

export type ControlMessage =
  /** A member asks to join (sent repeatedly to every known member until a view includes it). */
  | { readonly t: 'join'; readonly member: MemberInfo; readonly restart: RestartSummary | null }
  /** Answer to a join from a member of a live view: stop trying a total restart, keep asking. */
  | { readonly t: 'live'; readonly vid: number }
  /** The view that admits a joiner; donors[k] = members holding shard k's state, in preference order. */
  | { readonly t: 'view'; readonly view: View; readonly donors: readonly (readonly number[])[] }
  /** The view a total restart starts with; donorEnds[k] = the donor's log end for shard k (-1: none). */
  | {
      readonly t: 'restartView';
      readonly view: View;
      readonly donors: readonly (readonly number[])[];
      readonly donorEnds: readonly number[];
    }
  /** A member that needs shard `shard`'s state, having everything up to `from` (-1: nothing). */
  | {
      readonly t: 'stateReq';
      readonly shard: number;
      readonly vid: number;
      readonly from: number;
      readonly req: number;
      /**
       * Serve the local copy even if incomplete: the requester found that every member it could reach
       * through redirects is waiting on the others (nothing was delivered since their copies ended), and
       * this member's copy is the longest of them.
       */
      readonly anyway?: boolean;
      /**
       * The donor is not in the requester's view (a former holder of an orphaned shard): it may answer
       * from its log. Otherwise only a member that reached the requester's view may answer.
       */
      readonly fromLog?: boolean;
      /** The next chunk of a transfer this donor began (what its first chunk said, and where to go on). */
      readonly cont?: ChunkRequest;
    }
  | {
      readonly t: 'state';
      readonly shard: number;
      readonly req: number;
      readonly ok: true;
      readonly kind: 'tail' | 'state';
      readonly bytes: Uint8Array;
      readonly from: number;
      readonly to: number;
      /** The donor's last payload version at or below `to` (what the receiver must end up persisting). */
      readonly lastPayload: number;
      readonly lastTimestampUs: number;
      /** Chunk number in the transfer (0: first). */
      readonly chunk: number;
      /** Where the next chunk starts (the receiver asks for it with this); null: the last chunk. */
      readonly next: Uint8Array | null;
    }
  | {
      readonly t: 'state';
      readonly shard: number;
      readonly req: number;
      readonly ok: false;
      readonly reason: string;
      /** The refuser's own copy is incomplete: the members it waits for (ask them instead). */
      readonly redirect?: readonly number[];
      /** The last version of the refuser's (incomplete) local copy. */
      readonly logEnd?: number;
    };
