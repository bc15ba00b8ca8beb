import { SquallError } from '../api/errors.js';
import type { Logger } from '../log.js';
import { decodeRemoteReply, decodeRemoteRequest, encodeRemoteError, encodeRemoteReply, encodeRemoteRequest, type RemoteCalls, type RemoteMethod, type Store } from '../store/index.js';
import type { GroupMember } from '../transport/member.js';

/**
 * Forwarding between members over the group's P2P request/reply: a call about a shard goes to a member
 * of that shard (rotating the starting member, skipping this one), and moves on to the next member when
 * one times out, has left, or answers that it does not order the shard now. An answer that is an API
 * error (404, 412, ...) is the answer. A forwarded write without a request id gets one here, so a retry on
 * another member is applied once.
 */
export class P2PRemote implements RemoteCalls {
  readonly #member: GroupMember;
  readonly #timeoutMs: number;
  readonly #log: Logger;
  #rotation = 0;
  #forwardedWrites = 0;

  constructor(member: GroupMember, timeoutMs: number, log: Logger) {
    this.#member = member;
    this.#timeoutMs = timeoutMs;
    this.#log = log;
  }

  async call(shardName: string, method: RemoteMethod, args: unknown): Promise<unknown> {
    if ((method === 'put' || method === 'delete') && (args as { options: { requestId?: string } }).options.requestId === undefined) {
      const a = args as { options: { requestId?: string } };
      a.options = { ...a.options, requestId: `fwd:${this.#member.selfId}:${process.pid}:${++this.#forwardedWrites}` };
    }
    const payload = encodeRemoteRequest(shardName, method, args);
    // the installed view's layout: this member's shard objects only know shards it is in
    const layout = this.#member.view?.shards.find((s) => s.name === shardName);
    const members = (layout?.members ?? []).filter((id) => id !== this.#member.selfId);
    const start = this.#rotation++;
    let lastError: unknown = null;
    for (let k = 0; k < members.length; k++) {
      const to = members[(start + k) % members.length]!;
      let reply: Uint8Array;
      try {
        reply = await this.#member.request(to, payload, this.#timeoutMs);
      } catch (e) {
        lastError = e;
        this.#log.debug({ shard: shardName, to, err: (e as Error).message }, 'forward failed; trying the next member');
        continue;
      }
      try {
        return decodeRemoteReply(reply);
      } catch (e) {
        if (e instanceof SquallError && e.code === 'unavailable' && e.details.not_serving) {
          lastError = e;
          continue;
        }
        throw e;
      }
    }
    throw new SquallError(
      'unavailable',
      `no member of shard ${shardName} could serve the request${lastError instanceof Error ? ` (last: ${lastError.message})` : ''}`,
      { shard: shardName },
      1,
    );
  }

  /** Serves calls other members forward to this one. */
  serve(store: Store): void {
    this.#member.onRequest(async (_from, payload) => {
      try {
        const { shard, method, args } = decodeRemoteRequest(payload);
        return encodeRemoteReply(await store.handleRemote(shard, method, args));
      } catch (e) {
        return encodeRemoteError(e);
      }
    });
  }
}
