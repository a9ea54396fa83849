import { randomBytes } from 'node:crypto';
import { AES_256_KEY_BYTES, aesGcmOpen, aesGcmSeal } from './aes-gcm';

export type SymmetricAlgorithm = 'aes-256-gcm';

/**
 * Fresh CSPRNG key material for a key version of `algorithm`: 32 bytes for aes-256-gcm. RangeError for any
 * other algorithm.
 */
export function generateKeyMaterial(algorithm: SymmetricAlgorithm): Buffer {
  switch (algorithm) {
    case 'aes-256-gcm':
      return randomBytes(AES_256_KEY_BYTES);
    default:
      // Reachable from untyped callers; returning nothing would surface later as an obscure crypto error.
      throw new RangeError('unsupported key algorithm');
  }
}

/** The identity (the row) wrapped material is bound to. */
export interface KeyMaterialBinding {
  keyId: string;
  version: number;
  algorithm: string;
  purpose: string;
}

const AAD_LABEL = 'keyhold key material v1';

function lengthPrefixed(field: string): Buffer[] {
  const bytes = Buffer.from(field, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return [length, bytes];
}

/**
 * The associated data that binds wrapped material to its row: "keyhold key material v1", keyId, version
 * (decimal), algorithm, purpose, each as uint32 BE byte length || UTF-8. Length prefixes make it injective
 * ("ab"+"c" and "a"+"bc" differ), so material moved to another key, version, algorithm or purpose no
 * longer authenticates. This encoding is stored implicitly in every wrapped row: it must never change.
 * Throws RangeError for a version that is not a non-negative safe integer.
 */
export function keyMaterialAad(binding: KeyMaterialBinding): Buffer {
  if (!Number.isSafeInteger(binding.version) || binding.version < 0) {
    throw new RangeError('invalid key version in binding');
  }
  const fields = [AAD_LABEL, binding.keyId, String(binding.version), binding.algorithm, binding.purpose];
  return Buffer.concat(fields.flatMap(lengthPrefixed));
}

/** Seals `material` under the key-encryption key, bound to `binding` (aesGcmSeal with keyMaterialAad). */
export function wrapKeyMaterial(kek: Uint8Array, material: Uint8Array, binding: KeyMaterialBinding): Buffer {
  return aesGcmSeal(kek, material, keyMaterialAad(binding));
}

/**
 * Returns the material only if `wrapped` was made by wrapKeyMaterial under this KEK for exactly this
 * binding; otherwise (altered bytes, other KEK, a row copied onto another row) throws KeyUnwrapError.
 */
export function unwrapKeyMaterial(kek: Uint8Array, wrapped: Uint8Array, binding: KeyMaterialBinding): Buffer {
  return aesGcmOpen(kek, wrapped, keyMaterialAad(binding));
}
