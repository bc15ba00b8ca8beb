import { randomBytes } from 'node:crypto';

/**
 * Squall-Request-Id values: a random 96-bit prefix per generator (so two processes never collide) and a
 * counter (so one generator never repeats), without a random draw per request on the hot path.
 */
export class RequestIds {
  private readonly prefix = randomBytes(12).toString('base64url') + '-';
  private counter = 0;

  next(): string {
    this.counter++;
    return this.prefix + this.counter.toString(36);
  }
}
