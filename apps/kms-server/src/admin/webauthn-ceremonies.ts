import {
  type AuthenticationResponseJSON,
  type RegistrationResponseJSON,
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server';

export type WebAuthnErrorCode =
  | 'WRONG_ORIGIN'
  | 'WRONG_RP_ID'
  | 'CHALLENGE_MISMATCH'
  | 'USER_VERIFICATION_MISSING'
  | 'COUNTER_REGRESSION'
  | 'INVALID_RESPONSE';

/** A refused ceremony; the message is safe to show and says which check failed. */
export class WebAuthnError extends Error {
  constructor(
    readonly code: WebAuthnErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'WebAuthnError';
  }
}

export interface RelyingParty {
  rpId: string;
  rpName: string;
  /** The exact origins browsers report (scheme, host and port). */
  origins: string[];
}

export interface StoredCredential {
  id: string;
  publicKey: Uint8Array;
  counter: number;
  transports: string[];
}

/** ES256, EdDSA, RS256: what platform and roaming authenticators actually offer. */
const ALGORITHMS = [-7, -8, -257];

function refusal(error: unknown): WebAuthnError {
  const message = error instanceof Error ? error.message : String(error);
  if (/origin/i.test(message)) return new WebAuthnError('WRONG_ORIGIN', 'the response comes from another origin');
  if (/RP ID/i.test(message)) return new WebAuthnError('WRONG_RP_ID', 'the response is for another relying party');
  if (/challenge/i.test(message)) return new WebAuthnError('CHALLENGE_MISMATCH', 'the response answers another challenge');
  if (/user verification|user could not be verified/i.test(message)) {
    return new WebAuthnError('USER_VERIFICATION_MISSING', 'the authenticator did not verify the user (PIN or biometric)');
  }
  if (/counter/i.test(message)) {
    return new WebAuthnError('COUNTER_REGRESSION', 'the signature counter went backwards: the passkey may have been cloned');
  }
  return new WebAuthnError('INVALID_RESPONSE', 'the response is malformed or its signature does not verify');
}

/**
 * The WebAuthn ceremonies Keyhold uses, over @simplewebauthn/server: discoverable credentials (passkeys),
 * user verification always required, no attestation (Keyhold trusts the admin who enrols, not a vendor).
 * Challenges are chosen and checked by the caller, which keeps them server-side and single-use.
 */
export class WebAuthnCeremonies {
  constructor(private readonly relyingParty: RelyingParty) {}

  registrationOptions(input: { userId: string; userName: string; displayName: string; excludeCredentialIds: string[] }) {
    return generateRegistrationOptions({
      rpName: this.relyingParty.rpName,
      rpID: this.relyingParty.rpId,
      userName: input.userName,
      userDisplayName: input.displayName,
      userID: Buffer.from(input.userId, 'utf8'),
      attestationType: 'none',
      excludeCredentials: input.excludeCredentialIds.map((id) => ({ id })),
      authenticatorSelection: { residentKey: 'required', requireResidentKey: true, userVerification: 'required' },
      supportedAlgorithmIDs: ALGORITHMS,
      timeout: 300_000,
    });
  }

  async verifyRegistration(input: { response: unknown; expectedChallenge: string }) {
    let verified;
    try {
      verified = await verifyRegistrationResponse({
        response: input.response as RegistrationResponseJSON,
        expectedChallenge: input.expectedChallenge,
        expectedOrigin: this.relyingParty.origins,
        expectedRPID: this.relyingParty.rpId,
        requireUserVerification: true,
        supportedAlgorithmIDs: ALGORITHMS,
      });
    } catch (error) {
      throw refusal(error);
    }
    if (!verified.verified) throw new WebAuthnError('INVALID_RESPONSE', 'the registration did not verify');
    const { credential } = verified.registrationInfo;
    return {
      credentialId: credential.id,
      publicKey: credential.publicKey,
      counter: credential.counter,
      transports: (credential.transports ?? []) as string[],
    };
  }

  authenticationOptions(input: { allowCredentialIds?: string[]; challenge?: string }) {
    return generateAuthenticationOptions({
      rpID: this.relyingParty.rpId,
      allowCredentials: input.allowCredentialIds?.map((id) => ({ id })),
      // Bytes, not a string: a string would be UTF-8 encoded and no longer equal the challenge we stored.
      challenge: input.challenge ? Buffer.from(input.challenge, 'base64url') : undefined,
      userVerification: 'required',
      timeout: 300_000,
    });
  }

  /** Verifies an assertion by a stored credential; a non-zero counter that does not move forward is refused. */
  async verifyAuthentication(input: { response: unknown; expectedChallenge: string; credential: StoredCredential }) {
    let verified;
    try {
      verified = await verifyAuthenticationResponse({
        response: input.response as AuthenticationResponseJSON,
        expectedChallenge: input.expectedChallenge,
        expectedOrigin: this.relyingParty.origins,
        expectedRPID: this.relyingParty.rpId,
        requireUserVerification: true,
        credential: {
          id: input.credential.id,
          publicKey: new Uint8Array(input.credential.publicKey),
          counter: input.credential.counter,
          transports: input.credential.transports as never,
        },
      });
    } catch (error) {
      throw refusal(error);
    }
    if (!verified.verified) throw new WebAuthnError('INVALID_RESPONSE', 'the assertion did not verify');
    return { newCounter: verified.authenticationInfo.newCounter, userVerified: verified.authenticationInfo.userVerified };
  }
}
