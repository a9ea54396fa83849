import { randomBytes as nodeRandomBytes, randomUUID } from 'node:crypto';

/** Bytes from the operating system's CSPRNG. */
export function randomBytes(length: number): Buffer {
  return nodeRandomBytes(length);
}

/** A random token, base64url without padding: `bytes` of entropy (32 by default). */
export function randomToken(bytes = 32): string {
  return nodeRandomBytes(bytes).toString('base64url');
}

export function randomUuid(): string {
  return randomUUID();
}
