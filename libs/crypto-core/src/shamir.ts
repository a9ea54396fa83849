import { combine, split } from 'shamir-secret-sharing';
import { constantTimeEqual, hmacSha256, sha256 } from './constant-time';
import { generateKeyMaterial } from './key-material';
import { randomBytes } from './random';

/**
 * Shamir's secret sharing for the master key, over the audited `shamir-secret-sharing` package (no GF(256)
 * code of ours). This file only adds a text form for shares that people copy by hand: a versioned prefix, the
 * id of the share set (so a share from another `kmsctl init` is refused at once) and a checksum (so a typo is
 * reported as a malformed share rather than counted as a wrong one).
 *
 *   khs1-<base64url( setId[4] ‖ share[n+1] ‖ sha256("keyhold share v1" ‖ setId ‖ share)[0..4] )>
 */
export const SHARE_PREFIX = 'khs1-';
const SET_ID_BYTES = 4;
const CHECKSUM_BYTES = 4;

export class ShareFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShareFormatError';
  }
}

export interface DecodedShare {
  setId: string;
  /** The share's x coordinate (the package keeps it in the last byte); two shares of one set never share it. */
  index: number;
  bytes: Buffer;
}

function checksum(setId: Buffer, share: Uint8Array): Buffer {
  return sha256(Buffer.concat([Buffer.from('keyhold share v1\u0000'), setId, share])).subarray(0, CHECKSUM_BYTES);
}

/** Splits `secret` into `shares` text shares, any `threshold` of which rebuild it. */
export async function splitSecret(secret: Uint8Array, shares: number, threshold: number, setId: string): Promise<string[]> {
  if (!Number.isInteger(shares) || shares < 2 || shares > 255) throw new RangeError('shares must be an integer from 2 to 255');
  if (!Number.isInteger(threshold) || threshold < 2 || threshold > shares) {
    throw new RangeError('threshold must be an integer from 2 to the number of shares');
  }
  const id = Buffer.from(setId, 'hex');
  if (id.length !== SET_ID_BYTES) throw new RangeError('setId is 4 bytes of hex');
  const parts = await split(new Uint8Array(secret), shares, threshold);
  return parts.map((part) => SHARE_PREFIX + Buffer.concat([id, part, checksum(id, part)]).toString('base64url'));
}

/** Parses a text share; throws ShareFormatError (saying nothing about the secret) when it is not one. */
export function decodeShare(text: unknown, secretLength = 32): DecodedShare {
  if (typeof text !== 'string' || !text.trim().startsWith(SHARE_PREFIX)) {
    throw new ShareFormatError(`not a Keyhold unseal share (they start with ${SHARE_PREFIX})`);
  }
  const body = text.trim().slice(SHARE_PREFIX.length);
  if (!/^[A-Za-z0-9_-]+$/.test(body)) throw new ShareFormatError('the share holds characters outside base64url; was it copied whole?');
  const raw = Buffer.from(body, 'base64url');
  if (raw.length !== SET_ID_BYTES + secretLength + 1 + CHECKSUM_BYTES) {
    throw new ShareFormatError('the share has the wrong length; was it copied whole?');
  }
  const id = raw.subarray(0, SET_ID_BYTES);
  const share = raw.subarray(SET_ID_BYTES, raw.length - CHECKSUM_BYTES);
  if (!constantTimeEqual(checksum(id, share), raw.subarray(raw.length - CHECKSUM_BYTES))) {
    throw new ShareFormatError('the share fails its checksum; check it for typos');
  }
  return { setId: id.toString('hex'), index: share[share.length - 1], bytes: Buffer.from(share) };
}

/** Rebuilds the secret from decoded shares of one set. Fewer than the threshold yield garbage, not an error. */
export async function combineShares(shares: readonly DecodedShare[]): Promise<Buffer> {
  return Buffer.from(await combine(shares.map((share) => new Uint8Array(share.bytes))));
}

/**
 * A check value that recognises a key without revealing it: HMAC-SHA256 under the key of a fixed label and
 * the share set id. Stored beside the sealed configuration; compared in constant time.
 */
export function keyCheckValue(key: Uint8Array, context: string): Buffer {
  return hmacSha256(key, `keyhold master key check value v1\u0000${context}`);
}

export function matchesKeyCheckValue(key: Uint8Array, context: string, expected: Uint8Array): boolean {
  return constantTimeEqual(keyCheckValue(key, context), expected);
}

/** A master key split into text shares, with what the Shamir seal file keeps to recognise it (no key, no share). */
export interface MasterKeySplit {
  verifier: { setId: string; shares: number; threshold: number; checkValue: string };
  /** The text shares, to be shown once and stored nowhere. */
  shares: string[];
}

/**
 * Splits a master key into `shares` text shares under a new random set id, any `threshold` of which rebuild
 * it, with its check value (base64). A new random key unless `given` (a rekey passes the new root). A key made
 * here is zeroed before returning: only the shares leave, never the key.
 */
export async function splitMasterKey(shares: number, threshold: number, given?: Buffer): Promise<MasterKeySplit> {
  const key = given ?? generateKeyMaterial('aes-256-gcm');
  try {
    const setId = randomBytes(SET_ID_BYTES).toString('hex');
    const texts = await splitSecret(key, shares, threshold, setId);
    return { verifier: { setId, shares, threshold, checkValue: keyCheckValue(key, setId).toString('base64') }, shares: texts };
  } finally {
    if (!given) key.fill(0);
  }
}
