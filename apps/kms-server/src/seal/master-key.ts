import {
  type KeyMaterialBinding,
  KeyUnwrapError,
  aesGcmOpen,
  aesGcmSeal,
  unwrapKeyMaterial,
  wrapKeyMaterial,
} from '@keyhold/crypto-core';

/** How a master key is protected at rest: which sealer produced it. */
export type MasterKeyProtection = 'development-file' | 'passphrase-file' | 'shamir' | 'pkcs11';

/**
 * The root of trust: wraps and unwraps key-version material. Everything that protects the master key itself
 * (a development file, a passphrase-sealed file, later Shamir shares or a PKCS#11 token) only decides how a
 * MasterKey comes to exist; the rest of Keyhold sees this interface alone.
 */
export interface MasterKey {
  /**
   * The version new material is wrapped and sealed under. It can move (a rotation): store what `wrap` or `seal`
   * returned with `wrapForStorage`/`sealForStorage`, which read the two together.
   */
  readonly version: number;
  /** How the key was unsealed, for health and start-up messages; never the key. */
  readonly protection: MasterKeyProtection;
  wrap(material: Uint8Array, binding: KeyMaterialBinding): Buffer;
  /** Throws KeyUnwrapError when the wrapped bytes were altered or belong to another row. */
  unwrap(wrapped: Uint8Array, masterKeyVersion: number, binding: KeyMaterialBinding): Buffer;
  /** Seals a small secret (not key-version material) under master key `version`, bound to `label`. */
  seal(secret: Uint8Array, label: string): Buffer;
  /** Throws KeyUnwrapError when the bytes were altered, sealed under another label, or that version is gone. */
  open(sealed: Uint8Array, masterKeyVersion: number, label: string): Buffer;
  /**
   * Makes sure these versions can be opened if they exist: a row read from Postgres may name a version another
   * instance created a moment ago, before its NOTIFY arrived here. Optional: a single key has nothing to load.
   */
  ensureVersions?(versions: readonly number[]): Promise<void>;
  /** Forgets the key (zeroes what it holds); called when Keyhold seals. Later calls throw. */
  dispose?(): void;
}

/**
 * Wraps key-version material under the current master-key version and says which version that was, read in the
 * same synchronous step. A version read before an await and stored next to bytes wrapped after it may name
 * another version than the one that wrapped them (a rotation lands in between), and the row never opens again.
 */
export function wrapForStorage(masterKey: MasterKey, material: Uint8Array, binding: KeyMaterialBinding): { wrapped: Buffer; masterKeyVersion: number } {
  const wrapped = masterKey.wrap(material, binding);
  return { wrapped, masterKeyVersion: masterKey.version };
}

/** `seal` under the current master-key version, with that version read in the same step (see wrapForStorage). */
export function sealForStorage(masterKey: MasterKey, secret: Uint8Array, label: string): { sealed: Buffer; masterKeyVersion: number } {
  const sealed = masterKey.seal(secret, label);
  return { sealed, masterKeyVersion: masterKey.version };
}

/** A master key held in process memory (the development and passphrase-file protections). */
export class InMemoryMasterKey implements MasterKey {
  constructor(
    private readonly keyBytes: Buffer,
    readonly version: number,
    readonly protection: MasterKey['protection'],
  ) {
    if (keyBytes.length !== 32) throw new Error('a master key is 32 bytes');
  }

  dispose(): void {
    this.keyBytes.fill(0);
    this.disposed = true;
  }

  private disposed = false;

  private bytes(): Buffer {
    if (this.disposed) throw new Error('this master key was disposed (Keyhold sealed)');
    return this.keyBytes;
  }

  wrap(material: Uint8Array, binding: KeyMaterialBinding): Buffer {
    return wrapKeyMaterial(this.bytes(), material, binding);
  }

  unwrap(wrapped: Uint8Array, masterKeyVersion: number, binding: KeyMaterialBinding): Buffer {
    if (masterKeyVersion !== this.version) {
      throw new KeyUnwrapError(`material is wrapped under master key version ${masterKeyVersion}, not ${this.version}`);
    }
    return unwrapKeyMaterial(this.bytes(), wrapped, binding);
  }

  seal(secret: Uint8Array, label: string): Buffer {
    return aesGcmSeal(this.bytes(), secret, Buffer.from(`keyhold sealed secret v1\u0000${label}`));
  }

  open(sealed: Uint8Array, masterKeyVersion: number, label: string): Buffer {
    if (masterKeyVersion !== this.version) {
      throw new KeyUnwrapError(`secret is sealed under master key version ${masterKeyVersion}, not ${this.version}`);
    }
    return aesGcmOpen(this.bytes(), sealed, Buffer.from(`keyhold sealed secret v1\u0000${label}`));
  }
}
