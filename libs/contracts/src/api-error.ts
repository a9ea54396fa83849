import type { ErrorCode } from './error-codes';
import { httpStatusOf } from './error-codes';

/**
 * An error that is meant for the caller: its code and message go on the wire as they are, so the message
 * must never hold key material, plaintext or another caller's data.
 */
export class ApiError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = httpStatusOf(code);
  }
}
