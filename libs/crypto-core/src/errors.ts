/**
 * A ciphertext that is malformed, altered, or not for this key or context. Decryption failures all carry
 * the same message and never say which check failed; no message ever contains input, key or plaintext bytes.
 */
export class InvalidCiphertextError extends Error {
  readonly code = 'INVALID_CIPHERTEXT';
  constructor(message = 'the ciphertext is invalid, or does not match this key or context') {
    super(message);
    this.name = 'InvalidCiphertextError';
  }
}

/**
 * Wrapped material that does not open: altered, sealed under another key, or moved from the row it was
 * bound to. The message never contains key or material bytes.
 */
export class KeyUnwrapError extends Error {
  readonly code = 'KEY_UNWRAP_FAILED';
  constructor(message = 'wrapped key material failed its integrity check') {
    super(message);
    this.name = 'KeyUnwrapError';
  }
}
