export type KeyLifecycleErrorCode =
  | 'INVALID_STATE'
  | 'VALIDATION_FAILED'
  | 'KEY_VERSION_DISABLED'
  | 'KEY_VERSION_DESTROYED'
  | 'INVALID_CIPHERTEXT';

/** A request the lifecycle refuses; `code` is one of the wire error codes, the message is safe to show. */
export class KeyLifecycleError extends Error {
  constructor(
    readonly code: KeyLifecycleErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'KeyLifecycleError';
  }
}
