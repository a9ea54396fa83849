import { randomBytes as nodeRandomBytes, randomUUID } from 'node:crypto';

/** `length` bytes from the operating system's CSPRNG. Throws RangeError for a negative or non-integer length. */
export function randomBytes(length: number): Buffer {
  return nodeRandomBytes(length);
}

/**
 * A bearer token: `bytes` of CSPRNG entropy (32 by default), base64url without padding, so it is safe in
 * URLs, headers and file names as is.
 */
export function randomToken(bytes = 32): string {
  return nodeRandomBytes(bytes).toString('base64url');
}

/** An RFC 9562 version 4 UUID (122 random bits), lower-case. */
export function randomUuid(): string {
  return randomUUID();
}
