import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { KeyUnwrapError } from './errors';

export const AES_256_KEY_BYTES = 32;
export const GCM_IV_BYTES = 12;
export const GCM_TAG_BYTES = 16;

/** A wrong key size is the caller's bug, so it is a RangeError rather than a failure of the data. */
function assertKey(key: Uint8Array): void {
  if (key.length !== AES_256_KEY_BYTES) throw new RangeError(`an AES-256 key is ${AES_256_KEY_BYTES} bytes`);
}

/**
 * AES-256-GCM with a random 96-bit IV, as `iv[12] || ciphertext || tag[16]`, authenticating
 * `associatedData` too. Random IVs bound one key to about 2^32 seals (NIST SP 800-38D): meant for wrapping
 * under long-lived keys whose use count stays far below that (the master key wrapping key versions, sealed
 * secrets), not for per-request data, which goes through the ciphertext format. Throws RangeError for a key
 * that is not 32 bytes.
 */
export function aesGcmSeal(key: Uint8Array, plaintext: Uint8Array, associatedData: Uint8Array): Buffer {
  assertKey(key);
  const iv = randomBytes(GCM_IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(associatedData);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]);
}

/**
 * Opens what aesGcmSeal made under the same key and associated data. Any other input (too short, altered,
 * other key, other associated data) throws KeyUnwrapError and returns no bytes; a key that is not 32 bytes
 * throws RangeError.
 */
export function aesGcmOpen(key: Uint8Array, sealed: Uint8Array, associatedData: Uint8Array): Buffer {
  assertKey(key);
  if (sealed.length < GCM_IV_BYTES + GCM_TAG_BYTES) throw new KeyUnwrapError('sealed data is too short');
  const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  const iv = bytes.subarray(0, GCM_IV_BYTES);
  const body = bytes.subarray(GCM_IV_BYTES, bytes.length - GCM_TAG_BYTES);
  const tag = bytes.subarray(bytes.length - GCM_TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: GCM_TAG_BYTES });
    decipher.setAAD(associatedData);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    throw new KeyUnwrapError();
  }
}
