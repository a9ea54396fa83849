import argon2 from 'argon2';
import { randomBytes, randomToken } from '@keyhold/crypto-core';

/**
 * Argon2id for every stored token, code and session secret. The secrets are random (≥ 100 bits), so the
 * hash is defence in depth against a stolen database, not against guessing: the cost is modest (19 MiB,
 * 2 passes: OWASP's floor) to keep sign-in and session checks quick.
 */
const OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export function hashSecret(secret: string): Promise<string> {
  return argon2.hash(secret, OPTIONS);
}

/** False for a wrong secret and for a malformed hash; never throws. */
export async function verifySecret(hash: string, secret: string): Promise<boolean> {
  try {
    return await argon2.verify(hash, secret);
  } catch {
    return false;
  }
}

/** A token that can be looked up by its public id, while only its secret part is hashed: `<id>.<secret>`. */
export function makeLookupToken(): { id: string; secret: string; token: string } {
  const id = randomToken(12);
  const secret = randomToken(32);
  return { id, secret, token: `${id}.${secret}` };
}

export function splitToken(token: string): { id: string; secret: string } | null {
  const match = /^([A-Za-z0-9_-]{8,64})\.([A-Za-z0-9_-]{20,128})$/.exec(token);
  return match ? { id: match[1], secret: match[2] } : null;
}

const BASE32 = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';

/** Ten codes of four groups of five characters from a 32-letter alphabet: 100 bits each. */
export function generateRecoveryCodes(count = 10): string[] {
  return Array.from({ length: count }, () => {
    const bytes = randomBytes(20);
    const characters = [...bytes].map((byte) => BASE32[byte % 32]).join('');
    return characters.match(/.{5}/g)?.join('-') ?? characters;
  });
}

/** Case, spaces and dashes do not matter when a person types a code back. */
export function normaliseRecoveryCode(input: string): string {
  return input.toUpperCase().replace(/[\s-]/g, '');
}
