import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Compares two byte strings in time that depends only on their length. Lengths are not secret here (MACs,
 * commitments and token hashes have fixed sizes), so a length mismatch returns false at once.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export function sha256(data: Uint8Array | string): Buffer {
  return createHash('sha256').update(data).digest();
}

export function hmacSha256(key: Uint8Array, data: Uint8Array | string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}
