/**
 * Why a WebAuthn ceremony was refused. Stable: callers map them to their API errors and audit records.
 *
 * - WRONG_ORIGIN: clientDataJSON names an origin not in the configured list, or a cross-origin (iframe) call.
 * - WRONG_RP_ID: the authenticator data is for another relying party (its rpIdHash is not ours).
 * - CHALLENGE_MISMATCH: the response answers another challenge than the one expected.
 * - USER_VERIFICATION_MISSING: the UV flag (PIN, biometric) or the UP flag is not set.
 * - COUNTER_REGRESSION: a genuine assertion (signature verified) whose signature counter did not move
 *   forward: a sign the passkey may have been cloned. Record it.
 * - UNSUPPORTED_ALGORITHM: the new credential's key uses an algorithm Keyhold does not accept.
 * - INVALID_RESPONSE: anything else: malformed, oversized, wrong type, another credential, bad signature.
 */
export type WebAuthnErrorCode =
  | 'WRONG_ORIGIN'
  | 'WRONG_RP_ID'
  | 'CHALLENGE_MISMATCH'
  | 'USER_VERIFICATION_MISSING'
  | 'COUNTER_REGRESSION'
  | 'UNSUPPORTED_ALGORITHM'
  | 'INVALID_RESPONSE';

/**
 * A refused WebAuthn ceremony. The message is fixed text chosen by Keyhold (never text from the
 * response), so it is safe to return to the client and to log.
 */
export class WebAuthnError extends Error {
  constructor(
    readonly code: WebAuthnErrorCode,
    message: string,
    /** For COUNTER_REGRESSION: the counters, for the audit record. Never secret. */
    readonly details?: { storedCounter: number; receivedCounter: number },
  ) {
    super(message);
    this.name = 'WebAuthnError';
  }
}
