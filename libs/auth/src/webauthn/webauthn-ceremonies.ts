import {
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server';
import { WebAuthnError } from './webauthn-error';

/** The relying party: Keyhold's admin plane as browsers see it. */
export interface RelyingPartyConfig {
  /** The RP ID: a host name (e.g. `localhost`, `kms.example.com`); passkeys are bound to it for good. */
  rpId: string;
  /** Shown by the browser and the authenticator, e.g. "Keyhold". */
  rpName: string;
  /**
   * The exact origins the console is served from (scheme, host, port; e.g. `https://localhost:8444`).
   * Each host must be the RP ID or a subdomain of it; https only, except http on `localhost` for tests.
   */
  origins: readonly string[];
}

/** COSE algorithms accepted for new passkeys, in order of preference: ES256, EdDSA, RS256. */
export const SUPPORTED_ALGORITHM_IDS: readonly number[] = Object.freeze([-7, -8, -257]);

/** How long the browser may take; the same as the server-side challenge lifetime (CHALLENGE_TTL_MS). */
const CEREMONY_TIMEOUT_MS = 5 * 60 * 1000;

/** A passkey that has just been registered: what to store (all of it public). */
export interface RegisteredPasskey {
  /** base64url credential ID: the key to find the passkey by when it signs in. */
  credentialId: string;
  /** The COSE-encoded public key, as is: store these bytes and hand them back to verifyAuthentication. */
  publicKey: Uint8Array;
  /** Signature counter at registration (0 for authenticators that do not count). */
  counter: number;
  transports: string[];
  /** The credential is synced (BS flag), e.g. an iCloud or Google passkey. */
  backedUp: boolean;
  /** 'multiDevice' when the credential may be synced (BE flag), else 'singleDevice'. */
  deviceType: 'singleDevice' | 'multiDevice';
  /** The authenticator model's AAGUID (all zeros when the authenticator does not say). */
  aaguid: string;
}

/** A passkey as stored, as verifyAuthentication needs it. */
export interface StoredPasskey {
  /** base64url credential ID. */
  id: string;
  /** The COSE public key bytes from RegisteredPasskey.publicKey. */
  publicKey: Uint8Array;
  /** The last counter accepted for this passkey. */
  counter: number;
  transports?: readonly string[];
}

export interface VerifiedAssertion {
  /** base64url credential ID of the passkey that signed. */
  credentialId: string;
  /** Store it as the passkey's counter (conditionally on the old value, to catch two concurrent uses). */
  newCounter: number;
  /** Always true: an assertion without user verification is refused. */
  userVerified: boolean;
  backedUp: boolean;
  deviceType: 'singleDevice' | 'multiDevice';
}

// Larger than any real authenticator produces; bounds the work done on hostile input before any parsing.
const LIMITS = {
  credentialId: 1400, // 1023 bytes, the WebAuthn maximum, in base64url
  clientDataJSON: 8192,
  attestationObject: 65_536,
  authenticatorData: 8192,
  signature: 2048,
  userHandle: 128, // 64 bytes
};

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * WebAuthn registration and authentication for Keyhold's administrators, over @simplewebauthn/server.
 *
 * Guarantees:
 * - Only discoverable credentials (passkeys) are asked for, and user verification (PIN, biometric) is
 *   required in the options AND enforced on every response: a response without the UV flag is refused.
 * - Attestation is 'none': Keyhold trusts the administrator who enrols (holding a one-time token or a
 *   session), not an authenticator vendor; the AAGUID is reported for information only.
 * - A response verifies only for one of the configured origins (never cross-origin), for the configured
 *   RP ID, and for the exact challenge the caller expects. The caller gets that challenge from its
 *   ChallengeStore, which makes it single-use and short-lived: this class keeps no state.
 * - A counter regression is reported only for an assertion whose signature verified, so a forged
 *   response naming someone's credential ID cannot raise false clone alarms.
 * - Every refusal is a WebAuthnError with a stable code and a fixed message; nothing else is thrown by
 *   the verify methods, whatever the input.
 */
export class WebAuthnCeremonies {
  private readonly rpId: string;
  private readonly rpName: string;
  private readonly origins: string[];

  /** Throws a plain Error naming the problem when the configuration is unsafe or inconsistent. */
  constructor(config: RelyingPartyConfig) {
    const rpId = String(config?.rpId ?? '');
    if (!/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(rpId) || /^[0-9.]+$/.test(rpId)) {
      throw new Error(`WebAuthn RP ID "${rpId}" must be a lower-case host name (not an IP address, no scheme or port)`);
    }
    if (typeof config.rpName !== 'string' || config.rpName.trim() === '') throw new Error('WebAuthn RP name must not be empty');
    if (!Array.isArray(config.origins) || config.origins.length === 0) throw new Error('WebAuthn needs at least one allowed origin');
    this.origins = config.origins.map((origin) => checkOrigin(origin, rpId));
    this.rpId = rpId;
    this.rpName = config.rpName;
  }

  /**
   * Options for navigator.credentials.create(): a passkey for `userId` on this RP, user verification
   * required, no attestation, ES256/EdDSA/RS256. Pass the challenge from ChallengeStore.issue (or let
   * one be generated and store `options.challenge`). `userId` is the WebAuthn user handle, 1 to 64
   * bytes: bytes, or their base64url encoding (it comes back as `userHandle` at sign-in, base64url).
   * `excludeCredentialIds` (the user's existing passkeys) stops an authenticator that already holds one
   * from registering a second for the same user.
   */
  async registrationOptions(input: {
    userId: Uint8Array | string;
    userName: string;
    displayName?: string;
    excludeCredentialIds?: readonly (string | { id: string; transports?: readonly string[] })[];
    challenge?: string;
  }): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const userId = userHandleBytes(input.userId);
    if (typeof input.userName !== 'string' || input.userName.length === 0 || input.userName.length > 256) {
      throw new TypeError('userName must be 1 to 256 characters');
    }
    return generateRegistrationOptions({
      rpName: this.rpName,
      rpID: this.rpId,
      userName: input.userName,
      userDisplayName: input.displayName ?? input.userName,
      userID: userId,
      challenge: input.challenge === undefined ? undefined : challengeBytes(input.challenge),
      attestationType: 'none',
      excludeCredentials: (input.excludeCredentialIds ?? []).map((credential) =>
        typeof credential === 'string'
          ? { id: credential }
          : { id: credential.id, transports: credential.transports ? [...credential.transports] : undefined },
      ),
      authenticatorSelection: { residentKey: 'required', requireResidentKey: true, userVerification: 'required' },
      supportedAlgorithmIDs: [...SUPPORTED_ALGORITHM_IDS],
      timeout: CEREMONY_TIMEOUT_MS,
    });
  }

  /**
   * Verifies a registration response (RegistrationResponseJSON, as posted by the browser) against the
   * challenge the caller issued and has just consumed. Returns the passkey to store; throws WebAuthnError.
   */
  async verifyRegistration(input: { response: unknown; expectedChallenge: string }): Promise<RegisteredPasskey> {
    const response = checkShape(input.response, 'registration');
    checkClientData(response.response.clientDataJSON, 'webauthn.create', input.expectedChallenge, this.origins);
    let verified;
    try {
      verified = await verifyRegistrationResponse({
        response: response as RegistrationResponseJSON,
        expectedChallenge: input.expectedChallenge,
        expectedOrigin: this.origins,
        expectedRPID: this.rpId,
        expectedType: 'webauthn.create',
        requireUserPresence: true,
        requireUserVerification: true,
        supportedAlgorithmIDs: [...SUPPORTED_ALGORITHM_IDS],
      });
    } catch (error) {
      throw fromLibraryError(error);
    }
    if (!verified.verified) throw new WebAuthnError('INVALID_RESPONSE', 'the registration response does not verify');
    const info = verified.registrationInfo;
    // The library checks these; checking again costs nothing and keeps the guarantee local.
    if (!info.userVerified) throw new WebAuthnError('USER_VERIFICATION_MISSING', USER_VERIFICATION_MESSAGE);
    if (info.credential.id !== response.id) throw new WebAuthnError('INVALID_RESPONSE', 'the response names another credential than its authenticator data');
    return {
      credentialId: info.credential.id,
      publicKey: new Uint8Array(info.credential.publicKey),
      counter: info.credential.counter,
      transports: [...(info.credential.transports ?? [])],
      backedUp: info.credentialBackedUp,
      deviceType: info.credentialDeviceType,
      aaguid: info.aaguid,
    };
  }

  /**
   * Options for navigator.credentials.get(). Without `allowCredentialIds` the browser offers the user
   * any passkey of this RP (discoverable sign-in). Pass the challenge from ChallengeStore.issue, or
   * `challengeForOperation(...)` for an approval; otherwise one is generated: store `options.challenge`.
   */
  async authenticationOptions(
    input: { challenge?: string; allowCredentialIds?: readonly (string | { id: string; transports?: readonly string[] })[] } = {},
  ): Promise<PublicKeyCredentialRequestOptionsJSON> {
    return generateAuthenticationOptions({
      rpID: this.rpId,
      allowCredentials: (input.allowCredentialIds ?? []).map((credential) =>
        typeof credential === 'string'
          ? { id: credential }
          : { id: credential.id, transports: credential.transports ? [...credential.transports] : undefined },
      ),
      // Bytes, not the string: a string would be UTF-8 encoded, and the browser would then answer a
      // different challenge from the one the caller stored.
      challenge: input.challenge === undefined ? undefined : challengeBytes(input.challenge),
      userVerification: 'required',
      timeout: CEREMONY_TIMEOUT_MS,
    });
  }

  /**
   * Verifies an assertion by `credential` (found by the response's `id`) over `expectedChallenge`.
   * User verification is required. The counter rule (WebAuthn §7.2 step 21): when either the stored or
   * the received counter is non-zero, the received one must be greater, else COUNTER_REGRESSION (only
   * after the signature verified). Authenticators that always report 0 (synced passkeys) pass.
   * With `expectedUserHandle`, a response whose userHandle names another user is refused.
   */
  async verifyAuthentication(input: {
    response: unknown;
    expectedChallenge: string;
    credential: StoredPasskey;
    expectedUserHandle?: Uint8Array | string;
  }): Promise<VerifiedAssertion> {
    const response = checkShape(input.response, 'authentication');
    const stored = input.credential;
    if (!stored || typeof stored.id !== 'string' || !(stored.publicKey instanceof Uint8Array) || !isCounter(stored.counter)) {
      throw new TypeError('verifyAuthentication needs the stored credential (id, publicKey bytes, counter)');
    }
    if (response.id !== stored.id) throw new WebAuthnError('INVALID_RESPONSE', 'the assertion is by another passkey than the one given');
    checkClientData(response.response.clientDataJSON, 'webauthn.get', input.expectedChallenge, this.origins);
    if (input.expectedUserHandle !== undefined) {
      const expected = Buffer.from(userHandleBytes(input.expectedUserHandle)).toString('base64url');
      const handle = response.response.userHandle;
      if (typeof handle === 'string' && handle !== '' && handle !== expected) {
        throw new WebAuthnError('INVALID_RESPONSE', 'the assertion is for another user');
      }
    }
    let verified;
    try {
      verified = await verifyAuthenticationResponse({
        response: response as AuthenticationResponseJSON,
        expectedChallenge: input.expectedChallenge,
        expectedOrigin: this.origins,
        expectedRPID: this.rpId,
        expectedType: 'webauthn.get',
        requireUserVerification: true,
        credential: {
          id: stored.id,
          publicKey: new Uint8Array(stored.publicKey),
          // 0, not the stored counter: the library compares counters BEFORE it checks the signature, so a
          // forged response with a low counter would read as a clone. We compare after, below.
          counter: 0,
          transports: stored.transports ? [...stored.transports] : undefined,
        },
      });
    } catch (error) {
      throw fromLibraryError(error);
    }
    if (!verified.verified) throw new WebAuthnError('INVALID_RESPONSE', 'the assertion signature does not verify');
    const info = verified.authenticationInfo;
    if (!info.userVerified) throw new WebAuthnError('USER_VERIFICATION_MISSING', USER_VERIFICATION_MESSAGE);
    const received = info.newCounter;
    if ((received > 0 || stored.counter > 0) && received <= stored.counter) {
      throw new WebAuthnError(
        'COUNTER_REGRESSION',
        'the passkey signature counter did not move forward: the passkey may have been cloned',
        { storedCounter: stored.counter, receivedCounter: received },
      );
    }
    return {
      credentialId: stored.id,
      newCounter: received,
      userVerified: info.userVerified,
      backedUp: info.credentialBackedUp,
      deviceType: info.credentialDeviceType,
    };
  }
}

const USER_VERIFICATION_MESSAGE = 'the authenticator did not verify the user (PIN or biometric)';

function checkOrigin(origin: unknown, rpId: string): string {
  let url: URL;
  try {
    url = new URL(String(origin));
  } catch {
    throw new Error(`WebAuthn origin "${String(origin)}" is not a URL`);
  }
  if (url.origin !== origin) throw new Error(`WebAuthn origin "${origin}" must be an origin only (scheme://host[:port]), e.g. "${url.origin}"`);
  const host = url.hostname;
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && host === 'localhost')) {
    throw new Error(`WebAuthn origin "${origin}" must use https (plain http only for localhost)`);
  }
  if (host !== rpId && !host.endsWith(`.${rpId}`)) {
    throw new Error(`WebAuthn origin "${origin}" is not on the RP ID "${rpId}" or one of its subdomains: browsers would refuse it`);
  }
  return url.origin;
}

function userHandleBytes(userId: Uint8Array | string): Uint8Array<ArrayBuffer> {
  const bytes = typeof userId === 'string' && BASE64URL.test(userId) ? Buffer.from(userId, 'base64url') : userId;
  if (!(bytes instanceof Uint8Array) || bytes.length < 1 || bytes.length > 64) {
    throw new TypeError('a WebAuthn user handle is 1 to 64 bytes (bytes, or base64url)');
  }
  return new Uint8Array(bytes);
}

function challengeBytes(challenge: string): Uint8Array<ArrayBuffer> {
  if (typeof challenge !== 'string' || !/^[A-Za-z0-9_-]{22,128}$/.test(challenge)) {
    throw new TypeError('a challenge is base64url of 16 to 96 bytes');
  }
  const bytes = Buffer.from(challenge, 'base64url');
  // The browser echoes base64url(bytes): a non-canonical spelling would never compare equal.
  if (bytes.toString('base64url') !== challenge) throw new TypeError('a challenge must be canonical base64url');
  return new Uint8Array(bytes);
}

const isCounter = (value: unknown): value is number => Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 0xffffffff;

interface ResponseShape {
  id: string;
  rawId: string;
  type: string;
  response: { clientDataJSON: string; attestationObject?: string; authenticatorData?: string; signature?: string; userHandle?: string };
}

/** Structural checks and size limits before any decoding: hostile input is refused cheaply and uniformly. */
function checkShape(value: unknown, kind: 'registration' | 'authentication'): ResponseShape {
  const invalid = (why: string) => new WebAuthnError('INVALID_RESPONSE', `the ${kind} response is malformed: ${why}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('not an object');
  const credential = value as Record<string, unknown>;
  const inner = credential.response as Record<string, unknown> | undefined;
  const text = (field: unknown, max: number) => typeof field === 'string' && field.length <= max && BASE64URL.test(field);
  if (!text(credential.id, LIMITS.credentialId) || credential.id === '') throw invalid('id');
  if (credential.rawId !== credential.id) throw invalid('rawId differs from id');
  if (credential.type !== 'public-key') throw invalid('type is not "public-key"');
  if (typeof inner !== 'object' || inner === null || Array.isArray(inner)) throw invalid('no response');
  if (!text(inner.clientDataJSON, LIMITS.clientDataJSON)) throw invalid('clientDataJSON');
  if (kind === 'registration') {
    if (!text(inner.attestationObject, LIMITS.attestationObject)) throw invalid('attestationObject');
    if (inner.transports !== undefined && !(Array.isArray(inner.transports) && inner.transports.length <= 10 && inner.transports.every((t) => typeof t === 'string' && t.length <= 32))) {
      throw invalid('transports');
    }
  } else {
    if (!text(inner.authenticatorData, LIMITS.authenticatorData)) throw invalid('authenticatorData');
    if (!text(inner.signature, LIMITS.signature)) throw invalid('signature');
    if (inner.userHandle !== undefined && inner.userHandle !== null && !text(inner.userHandle, LIMITS.userHandle)) throw invalid('userHandle');
  }
  return value as ResponseShape;
}

/**
 * Our own reading of clientDataJSON, before the library's: each mismatch gets its precise code without
 * depending on the library's error wording, and a cross-origin (iframe) ceremony is refused, which the
 * library does not do for registrations.
 */
function checkClientData(encoded: string, type: 'webauthn.create' | 'webauthn.get', expectedChallenge: string, origins: readonly string[]): void {
  if (typeof expectedChallenge !== 'string' || expectedChallenge.length === 0) {
    throw new TypeError('the expected challenge is required');
  }
  let clientData: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    clientData = parsed as Record<string, unknown>;
  } catch {
    throw new WebAuthnError('INVALID_RESPONSE', 'clientDataJSON is not a JSON object');
  }
  if (clientData.type !== type) throw new WebAuthnError('INVALID_RESPONSE', `the response is not a ${type} response`);
  if (clientData.challenge !== expectedChallenge) {
    throw new WebAuthnError('CHALLENGE_MISMATCH', 'the response answers another challenge (used, expired or for another operation)');
  }
  if (typeof clientData.origin !== 'string' || !origins.includes(clientData.origin)) {
    throw new WebAuthnError('WRONG_ORIGIN', 'the response comes from an origin this server does not serve');
  }
  if (clientData.crossOrigin === true || clientData.topOrigin !== undefined) {
    throw new WebAuthnError('WRONG_ORIGIN', 'the ceremony ran in a cross-origin frame');
  }
}

/** The library's refusals, by their v14 wording; anything unrecognised is INVALID_RESPONSE. */
function fromLibraryError(error: unknown): WebAuthnError {
  if (error instanceof WebAuthnError) return error;
  const name = error instanceof Error ? error.name : '';
  const message = error instanceof Error ? error.message : '';
  if (name === 'UnexpectedRPIDHash' || /^Unexpected RP ID hash/.test(message)) {
    return new WebAuthnError('WRONG_RP_ID', 'the response is for another relying party (RP ID)');
  }
  if (/^Unexpected (registration|authentication) response origin/.test(message) || /top origin/i.test(message)) {
    return new WebAuthnError('WRONG_ORIGIN', 'the response comes from an origin this server does not serve');
  }
  if (/^Unexpected (registration|authentication) response challenge/.test(message)) {
    return new WebAuthnError('CHALLENGE_MISMATCH', 'the response answers another challenge (used, expired or for another operation)');
  }
  if (/^User verification (was )?required/.test(message) || /^User (presence was required|not present)/.test(message)) {
    return new WebAuthnError('USER_VERIFICATION_MISSING', USER_VERIFICATION_MESSAGE);
  }
  if (/^Unexpected public key alg/.test(message)) {
    return new WebAuthnError('UNSUPPORTED_ALGORITHM', 'the passkey uses a key algorithm Keyhold does not accept (ES256, EdDSA or RS256)');
  }
  return new WebAuthnError('INVALID_RESPONSE', 'the response is malformed or its signature does not verify');
}
