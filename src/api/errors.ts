import { ERROR_STATUS, type ErrorBody, type ErrorCode } from './types.js';

/**
 * The one error type that reaches users, on the server and in the client: an API error code (API.md),
 * a human sentence, and optional details that travel in the JSON body next to code and message.
 */
export class SquallError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown>;
  /** Seconds a client should wait before retrying (503s). */
  readonly retryAfterS: number | undefined;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, retryAfterS?: number) {
    super(message);
    this.name = 'SquallError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.details = details;
    this.retryAfterS = retryAfterS;
  }

  toBody(): ErrorBody {
    const { code: _c, message: _m, ...details } = this.details;
    return { error: { code: this.code, message: this.message, ...details } };
  }

  /** The error an HTTP answer carries (API.md's JSON shape); `retryAfterS` from its Retry-After header. */
  static fromBody(status: number, body: unknown, retryAfterS?: number): SquallError {
    const err = (body as Partial<ErrorBody> | null)?.error;
    if (err && typeof err.code === 'string' && err.code in ERROR_STATUS) {
      const { code, message, ...details } = err;
      return new SquallError(code, String(message ?? code), details, retryAfterS);
    }
    return new SquallError('internal', `unexpected HTTP ${status} without a Squall error body`, { status }, retryAfterS);
  }
}

export function isSquallError(e: unknown, code?: ErrorCode): e is SquallError {
  return e instanceof SquallError && (code === undefined || e.code === code);
}
