import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { encodeCBOR } from '@levischuck/tiny-cbor';

/** What a test may bend, one at a time, to produce each refusal the server must make. */
export interface AssertionOverrides {
  origin?: string;
  rpId?: string;
  userVerified?: boolean;
  challenge?: string;
  /** Force the signature counter (a value at or below the stored one is a regression). */
  counter?: number;
  type?: string;
}

interface StoredCredential {
  id: Buffer;
  privateKey: KeyObject;
  rpId: string;
  userHandle: string;
}

const FLAG_USER_PRESENT = 0x01;
const FLAG_USER_VERIFIED = 0x04;
const FLAG_ATTESTED_DATA = 0x40;

const b64url = (bytes: Uint8Array | string) => Buffer.from(bytes).toString('base64url');
const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest();

/**
 * A software passkey (discoverable ES256 credential) that produces real WebAuthn bytes: CBOR attestation
 * objects with COSE keys, authenticator data, client data JSON and DER ECDSA signatures, exactly what a
 * browser hands to @simplewebauthn/browser. Used by the tests to drive the server's real verification.
 */
export class SoftwareAuthenticator {
  private readonly credentials: StoredCredential[] = [];
  private counter: number;

  constructor(private readonly options: { origin: string; rpId: string; userVerified?: boolean; signCountStart?: number }) {
    this.counter = options.signCountStart ?? 0;
  }

  /** navigator.credentials.create(): answers PublicKeyCredentialCreationOptionsJSON. */
  async createCredential(creationOptions: unknown, overrides: AssertionOverrides = {}) {
    const options = creationOptions as { challenge: string; rp: { id?: string }; user: { id: string } };
    const rpId = overrides.rpId ?? options.rp.id ?? this.options.rpId;
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const id = randomBytes(32);
    this.credentials.push({ id, privateKey, rpId: options.rp.id ?? this.options.rpId, userHandle: options.user.id });
    const jwk = publicKey.export({ format: 'jwk' });
    const coseKey = new Map<number, number | Uint8Array>([
      [1, 2], // kty: EC2
      [3, -7], // alg: ES256
      [-1, 1], // crv: P-256
      [-2, Buffer.from(jwk.x as string, 'base64url')],
      [-3, Buffer.from(jwk.y as string, 'base64url')],
    ]);
    const credentialIdLength = Buffer.alloc(2);
    credentialIdLength.writeUInt16BE(id.length);
    const authData = Buffer.concat([
      this.authenticatorData(rpId, FLAG_ATTESTED_DATA, overrides),
      Buffer.alloc(16), // AAGUID: none
      credentialIdLength,
      id,
      Buffer.from(encodeCBOR(coseKey as never)),
    ]);
    const attestationObject = encodeCBOR(new Map<string, never>([
      ['fmt', 'none' as never],
      ['attStmt', new Map() as never],
      ['authData', authData as never],
    ]));
    return {
      id: b64url(id),
      rawId: b64url(id),
      type: 'public-key',
      response: {
        clientDataJSON: this.clientData('webauthn.create', options.challenge, overrides),
        attestationObject: b64url(attestationObject),
        transports: ['internal'],
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  /** navigator.credentials.get() with a discoverable credential: answers PublicKeyCredentialRequestOptionsJSON. */
  async getAssertion(requestOptions: unknown, overrides: AssertionOverrides = {}) {
    const options = requestOptions as { challenge: string; rpId?: string; allowCredentials?: Array<{ id: string }> };
    const rpId = options.rpId ?? this.options.rpId;
    const allowed = options.allowCredentials?.map((credential) => credential.id) ?? [];
    const credential = [...this.credentials]
      .reverse()
      .find((candidate) => candidate.rpId === rpId && (allowed.length === 0 || allowed.includes(b64url(candidate.id))));
    if (!credential) throw new Error(`no passkey for ${rpId} in this authenticator`);
    const authenticatorData = this.authenticatorData(overrides.rpId ?? rpId, 0, overrides);
    const clientDataJSON = this.clientData('webauthn.get', options.challenge, overrides);
    const signature = sign('sha256', Buffer.concat([authenticatorData, sha256(Buffer.from(clientDataJSON, 'base64url'))]), credential.privateKey);
    return {
      id: b64url(credential.id),
      rawId: b64url(credential.id),
      type: 'public-key',
      response: {
        clientDataJSON,
        authenticatorData: b64url(authenticatorData),
        signature: b64url(signature),
        userHandle: credential.userHandle,
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  private authenticatorData(rpId: string, extraFlags: number, overrides: AssertionOverrides): Buffer {
    const verified = overrides.userVerified ?? this.options.userVerified ?? true;
    const flags = FLAG_USER_PRESENT | (verified ? FLAG_USER_VERIFIED : 0) | extraFlags;
    this.counter += 1;
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(overrides.counter ?? this.counter);
    return Buffer.concat([sha256(rpId), Buffer.from([flags]), counter]);
  }

  private clientData(type: string, challenge: string, overrides: AssertionOverrides): string {
    return b64url(
      JSON.stringify({
        type: overrides.type ?? type,
        challenge: overrides.challenge ?? challenge,
        origin: overrides.origin ?? this.options.origin,
        crossOrigin: false,
      }),
    );
  }
}
