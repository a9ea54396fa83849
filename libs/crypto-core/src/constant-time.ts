import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Compares two byte strings in time that depends only on their length. Lengths are not secret here (MACs,
 * commitments and token hashes have fixed sizes), so a length mismatch returns false at once.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** SHA-256 of `data`; a string is hashed as its UTF-8 bytes. */
export function sha256(data: Uint8Array | string): Buffer {
  return createHash('sha256').update(data).digest();
}

/** SHA-256 of data that arrives in parts (a file as it is written): `update` each part, then `hex` once. */
export interface Sha256Accumulator {
  update(data: Uint8Array): void;
  hex(): string;
}

export function sha256Accumulator(): Sha256Accumulator {
  const hash = createHash('sha256');
  return { update: (data) => void hash.update(data), hex: () => hash.digest('hex') };
}

/** HMAC-SHA256 (RFC 2104) of `data` under `key`; a string is MACed as its UTF-8 bytes. Compare in constant time. */
export function hmacSha256(key: Uint8Array, data: Uint8Array | string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}
