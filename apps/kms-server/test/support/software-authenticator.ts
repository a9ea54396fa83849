import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { encodeCBOR, type CBORType } from '@levischuck/tiny-cbor';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';

/**
 * What a test may bend, one thing at a time, to produce each refusal the server must make. Anything not
 * given is what an honest authenticator in an honest browser would send.
 */
export interface AuthenticatorOverrides {
  /** clientDataJSON.origin (the browser's origin). */
  origin?: string;
  /** The RP ID hashed into the authenticator data. */
  rpId?: string;
  /** The UV flag (PIN / biometric done). */
  userVerified?: boolean;
  /** The UP flag (user touched it). */
  userPresent?: boolean;
  /** clientDataJSON.challenge: answer another challenge than the options' one. */
  challenge?: string;
  /** Force the signature counter in this response (the authenticator's own counter is left as is). */
  counter?: number;
  /** clientDataJSON.type (e.g. 'webauthn.create' in an assertion). */
  type?: string;
  /** clientDataJSON.crossOrigin: the ceremony ran in a cross-origin iframe. */
  crossOrigin?: boolean;
  /** Flip a bit of the signature (assertions only). */
  corruptSignature?: boolean;
  /** Sign with this credential (base64url id) rather than the one the authenticator would pick. */
  credentialId?: string;
  /** response.userHandle of an assertion; null leaves it out. */
  userHandle?: string | null;
}

/** @deprecated the old name: use AuthenticatorOverrides. */
export type AssertionOverrides = AuthenticatorOverrides;

export interface SoftwareAuthenticatorOptions {
  /** The origin the "browser" reports, e.g. https://localhost:8444. */
  origin: string;
  /** The RP ID used when the options do not name one. */
  rpId: string;
  /** Whether the authenticator verifies its user (sets UV). Default true. */
  userVerified?: boolean;
  /** The first credential's counter at registration; each assertion adds 1. Default 0. */
  signCountStart?: number;
  /** False: always report counter 0, like synced passkeys (iCloud, Google). Default true. */
  countsSignatures?: boolean;
  /** Backup eligible (BE) and backed up (BS) flags, like a synced passkey. Default false. */
  backupEligible?: boolean;
  backedUp?: boolean;
}

interface Credential {
  id: Buffer;
  privateKey: KeyObject;
  rpId: string;
  userHandle: string;
  counter: number;
}

const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_BE = 0x08;
const FLAG_BS = 0x10;
const FLAG_AT = 0x40;
const ES256 = -7;

const b64url = (bytes: Uint8Array | string) => Buffer.from(bytes).toString('base64url');
const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest();

/**
 * A software passkey authenticator (discoverable ES256 credentials on P-256, keys in memory) with the
 * browser's part folded in: it answers the JSON options the server sends with exactly the JSON
 * @simplewebauthn/browser would post back. The bytes are real: a CBOR attestation object ('none'
 * format) with authenticator data and a COSE public key, clientDataJSON, and DER-encoded ECDSA
 * signatures over authenticatorData || SHA-256(clientDataJSON). So tests drive the server's real
 * verification path; overrides bend one field at a time to produce each refusal.
 *
 * Like a real authenticator it refuses (throws) to register when it already holds a credential named in
 * excludeCredentials, or when the options do not offer ES256; it keeps a counter per credential.
 */
export class SoftwareAuthenticator {
  private readonly credentials: Credential[] = [];

  constructor(private readonly options: SoftwareAuthenticatorOptions) {}

  /** base64url ids of the credentials this authenticator holds, oldest first. */
  get credentialIds(): string[] {
    return this.credentials.map((credential) => b64url(credential.id));
  }

  /** navigator.credentials.create(): answers PublicKeyCredentialCreationOptionsJSON. */
  async createCredential(creationOptions: PublicKeyCredentialCreationOptionsJSON, overrides: AuthenticatorOverrides = {}): Promise<RegistrationResponseJSON> {
    const options = creationOptions;
    const rpId = options.rp.id ?? this.options.rpId;
    if (!options.pubKeyCredParams?.some((param) => param.alg === ES256)) {
      throw new Error('NotSupportedError: the options do not offer ES256, the only algorithm this authenticator has');
    }
    const excluded = new Set((options.excludeCredentials ?? []).map((descriptor) => descriptor.id));
    if (this.credentials.some((credential) => credential.rpId === rpId && excluded.has(b64url(credential.id)))) {
      throw new Error('InvalidStateError: this authenticator already holds a passkey for this account');
    }

    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const credential: Credential = {
      id: randomBytes(32),
      privateKey,
      rpId,
      userHandle: options.user.id,
      counter: this.options.countsSignatures === false ? 0 : (this.options.signCountStart ?? 0),
    };
    this.credentials.push(credential);

    const jwk = publicKey.export({ format: 'jwk' });
    const coseKey = new Map<number, CBORType>([
      [1, 2], // kty: EC2
      [3, ES256], // alg
      [-1, 1], // crv: P-256
      [-2, Buffer.from(jwk.x as string, 'base64url')],
      [-3, Buffer.from(jwk.y as string, 'base64url')],
    ]);
    const credentialIdLength = Buffer.alloc(2);
    credentialIdLength.writeUInt16BE(credential.id.length);
    const authData = Buffer.concat([
      this.authenticatorData(overrides.rpId ?? rpId, FLAG_AT, overrides.counter ?? credential.counter, overrides),
      Buffer.alloc(16), // AAGUID: all zeros, as attestation 'none' presents it
      credentialIdLength,
      credential.id,
      Buffer.from(encodeCBOR(coseKey)),
    ]);
    const attestationObject = encodeCBOR(
      new Map<string, CBORType>([
        ['fmt', 'none'],
        ['attStmt', new Map()],
        ['authData', authData],
      ]),
    );
    return {
      id: b64url(credential.id),
      rawId: b64url(credential.id),
      type: 'public-key',
      response: {
        clientDataJSON: this.clientData('webauthn.create', options.challenge, overrides),
        attestationObject: b64url(attestationObject),
        transports: ['internal'],
        publicKeyAlgorithm: ES256,
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  /**
   * navigator.credentials.get(): answers PublicKeyCredentialRequestOptionsJSON. With no allowCredentials
   * (discoverable sign-in) it uses its newest credential for the RP ID and returns its userHandle; each
   * call adds 1 to that credential's counter (unless it does not count signatures).
   */
  async getAssertion(requestOptions: PublicKeyCredentialRequestOptionsJSON, overrides: AuthenticatorOverrides = {}): Promise<AuthenticationResponseJSON> {
    const options = requestOptions;
    const rpId = options.rpId ?? this.options.rpId;
    const allowed = (options.allowCredentials ?? []).map((descriptor) => descriptor.id);
    const credential = overrides.credentialId
      ? this.credentials.find((candidate) => b64url(candidate.id) === overrides.credentialId)
      : [...this.credentials].reverse().find((candidate) => candidate.rpId === rpId && (allowed.length === 0 || allowed.includes(b64url(candidate.id))));
    if (!credential) throw new Error(`NotAllowedError: no passkey for ${rpId} in this authenticator`);
    if (this.options.countsSignatures !== false) credential.counter += 1;

    const authenticatorData = this.authenticatorData(overrides.rpId ?? rpId, 0, overrides.counter ?? credential.counter, overrides);
    const clientDataJSON = this.clientData('webauthn.get', options.challenge, overrides);
    const signature = sign('sha256', Buffer.concat([authenticatorData, sha256(Buffer.from(clientDataJSON, 'base64url'))]), credential.privateKey);
    if (overrides.corruptSignature) signature[signature.length - 1] ^= 0x01;
    const userHandle = overrides.userHandle === undefined ? credential.userHandle : overrides.userHandle;
    return {
      id: b64url(credential.id),
      rawId: b64url(credential.id),
      type: 'public-key',
      response: {
        clientDataJSON,
        authenticatorData: b64url(authenticatorData),
        signature: b64url(signature),
        ...(userHandle === null ? {} : { userHandle }),
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  private authenticatorData(rpId: string, extraFlags: number, counter: number, overrides: AuthenticatorOverrides): Buffer {
    const verified = overrides.userVerified ?? this.options.userVerified ?? true;
    const present = overrides.userPresent ?? true;
    const flags =
      (present ? FLAG_UP : 0) |
      (verified ? FLAG_UV : 0) |
      (this.options.backupEligible ? FLAG_BE : 0) |
      (this.options.backedUp ? FLAG_BS : 0) |
      extraFlags;
    const counterBytes = Buffer.alloc(4);
    counterBytes.writeUInt32BE(counter);
    return Buffer.concat([sha256(rpId), Buffer.from([flags]), counterBytes]);
  }

  private clientData(type: string, challenge: string, overrides: AuthenticatorOverrides): string {
    return b64url(
      JSON.stringify({
        type: overrides.type ?? type,
        challenge: overrides.challenge ?? challenge,
        origin: overrides.origin ?? this.options.origin,
        crossOrigin: overrides.crossOrigin ?? false,
      }),
    );
  }
}
