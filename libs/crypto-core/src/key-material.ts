import { randomBytes } from 'node:crypto';
import { AES_256_KEY_BYTES, aesGcmOpen, aesGcmSeal } from './aes-gcm';

export type SymmetricAlgorithm = 'aes-256-gcm';

/** Fresh key material for a key version of `algorithm`. */
export function generateKeyMaterial(algorithm: SymmetricAlgorithm): Buffer {
  switch (algorithm) {
    case 'aes-256-gcm':
      return randomBytes(AES_256_KEY_BYTES);
  }
}

/** The identity wrapped material is bound to. */
export interface KeyMaterialBinding {
  keyId: string;
  version: number;
  algorithm: string;
  purpose: string;
}

const AAD_LABEL = 'keyhold key material v1';

/**
 * Length-prefixed, so no two bindings encode alike ("ab"+"c" ≠ "a"+"bc"): material moved to another row,
 * version, algorithm or purpose no longer authenticates.
 */
export function keyMaterialAad(binding: KeyMaterialBinding): Buffer {
  const fields = [AAD_LABEL, binding.keyId, String(binding.version), binding.algorithm, binding.purpose];
  return Buffer.concat(
    fields.flatMap((field) => {
      const bytes = Buffer.from(field, 'utf8');
      const length = Buffer.alloc(4);
      length.writeUInt32BE(bytes.length);
      return [length, bytes];
    }),
  );
}

export function wrapKeyMaterial(kek: Uint8Array, material: Uint8Array, binding: KeyMaterialBinding): Buffer {
  return aesGcmSeal(kek, material, keyMaterialAad(binding));
}

/** Throws KeyUnwrapError when the bytes were altered or belong to another binding. */
export function unwrapKeyMaterial(kek: Uint8Array, wrapped: Uint8Array, binding: KeyMaterialBinding): Buffer {
  return aesGcmOpen(kek, wrapped, keyMaterialAad(binding));
}
