// node:crypto is limited to createHash in this app (eslint.config.mjs): key_ids and their metric label are
// hashes of non-secret key metadata; no key material is ever handled here.
import { createHash } from 'node:crypto';
import type { KeyView } from '@keyhold/contracts';

/** Status and Encrypt limit: kube-apiserver accepts at most 1024 bytes; we stay far below. */
export const MAX_KEY_ID_BYTES = 1023;

/**
 * The KMS v2 key_id of one Keyhold key version.
 *
 * It is public (stored in etcd in plaintext, logged by the apiserver), so it is a hash of non-secret
 * metadata that every plugin replica reads from Keyhold: the key's name and creation time (a key destroyed
 * and created again under a reused name, should that ever be allowed, still gets new ids), the version
 * number and that version's creation time, and an optional operator-chosen suffix. Versions only ever
 * increase, so a rotation always yields an id never reported before (A -> B -> A cannot happen).
 *
 * Shape: `kh-v<version>-<22 base64url characters (128 bits of SHA-256)>`, e.g. `kh-v3-q0Fz...`. The version
 * in clear is for operators reading etcd or logs; the plugin never parses it, it looks ids up.
 */
export function deriveKeyId(
  key: Pick<KeyView, 'name' | 'createdAt'>,
  version: { version: number; createdAt: string },
  suffix = '',
): string {
  const digest = createHash('sha256')
    .update('keyhold-kms-v2\0')
    .update(key.name)
    .update('\0')
    .update(key.createdAt)
    .update('\0')
    .update(String(version.version))
    .update('\0')
    .update(version.createdAt)
    .update('\0')
    .update(suffix)
    .digest();
  return `kh-v${version.version}-${digest.subarray(0, 16).toString('base64url')}`;
}

/** `sha256:<hex>` of a key_id, the form kube-apiserver's own metrics use (key_id_hash labels). */
export function keyIdHash(keyId: string): string {
  return `sha256:${createHash('sha256').update(keyId, 'utf8').digest('hex')}`;
}

/** Hex SHA-256 of bytes: binds the annotation map into the encryption context (which limits value sizes). */
export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}
