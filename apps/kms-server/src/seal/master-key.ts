import {
  type KeyMaterialBinding,
  KeyUnwrapError,
  aesGcmOpen,
  aesGcmSeal,
  unwrapKeyMaterial,
  wrapKeyMaterial,
} from '@keyhold/crypto-core';

/**
 * The root of trust: wraps and unwraps key-version material. Everything that protects the master key itself
 * (a development file, a passphrase-sealed file, later Shamir shares or a PKCS#11 token) only decides how a
 * MasterKey comes to exist; the rest of Keyhold sees this interface alone.
 */
export interface MasterKey {
  readonly version: number;
  /** How the key was unsealed, for health and start-up messages; never the key. */
  readonly protection: 'development-file' | 'passphrase-file';
  wrap(material: Uint8Array, binding: KeyMaterialBinding): Buffer;
  /** Throws KeyUnwrapError when the wrapped bytes were altered or belong to another row. */
  unwrap(wrapped: Uint8Array, masterKeyVersion: number, binding: KeyMaterialBinding): Buffer;
  /** Seals a small secret (not key-version material) under the master key, bound to `label`. */
  seal(secret: Uint8Array, label: string): Buffer;
  open(sealed: Uint8Array, label: string): Buffer;
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

  wrap(material: Uint8Array, binding: KeyMaterialBinding): Buffer {
    return wrapKeyMaterial(this.keyBytes, material, binding);
  }

  unwrap(wrapped: Uint8Array, masterKeyVersion: number, binding: KeyMaterialBinding): Buffer {
    if (masterKeyVersion !== this.version) {
      throw new KeyUnwrapError(`material is wrapped under master key version ${masterKeyVersion}, not ${this.version}`);
    }
    return unwrapKeyMaterial(this.keyBytes, wrapped, binding);
  }

  seal(secret: Uint8Array, label: string): Buffer {
    return aesGcmSeal(this.keyBytes, secret, Buffer.from(`keyhold sealed secret v1\u0000${label}`));
  }

  open(sealed: Uint8Array, label: string): Buffer {
    return aesGcmOpen(this.keyBytes, sealed, Buffer.from(`keyhold sealed secret v1\u0000${label}`));
  }
}
