import { type KeyObject, createCipheriv, createDecipheriv, createSecretKey, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { InvalidCiphertextError } from './errors';

/**
 * Keyhold ciphertext, format 1 (docs/ciphertext-format.md):
 *
 *   kh1:<keyName>:<version>:<base64( salt[32] || commitment[32] || gcmCiphertext || gcmTag[16] )>
 *
 * Per message, HKDF-SHA256(ikm = version key, salt, info = "keyhold/ciphertext/v1" 0x00 header) gives a
 * fresh AES-256-GCM key, its IV and a 32-byte key commitment. Fresh keys lift the 2^32-messages bound of one
 * GCM key with random IVs; the commitment makes a ciphertext open under exactly one key. The header (the
 * text before the body) and the canonical context are the GCM associated data.
 */
export const CIPHERTEXT_PREFIX = 'kh1';

export interface CiphertextHeader {
  keyName: string;
  keyVersion: number;
}

export interface ParsedCiphertext extends CiphertextHeader {
  formatVersion: 1;
  header: Buffer;
  body: Buffer;
}

export type EncryptionContext = Readonly<Record<string, string>>;

/**
 * A version key held as an opaque key object: importing the bytes once, instead of on every message, takes
 * a measurable share of the hot path's time off each request.
 */
export type VersionKey = KeyObject;

export function importVersionKey(bytes: Uint8Array): VersionKey {
  return createSecretKey(bytes);
}

const SALT_BYTES = 32;
const COMMITMENT_BYTES = 32;
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const MIN_BODY_BYTES = SALT_BYTES + COMMITMENT_BYTES + TAG_BYTES;
const HKDF_INFO_LABEL = Buffer.from('keyhold/ciphertext/v1\u0000', 'utf8');
const KEY_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const VERSION = /^[1-9][0-9]{0,9}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const MAX_VERSION = 2_147_483_647;

/**
 * The context as authenticated bytes: empty for none, else JSON of its [key, value] pairs sorted by key, so
 * the same map in any order gives the same bytes and no two different maps do.
 */
export function canonicalContext(context?: EncryptionContext): Buffer {
  if (!context) return Buffer.alloc(0);
  const keys = Object.keys(context);
  if (keys.length === 0) return Buffer.alloc(0);
  keys.sort();
  return Buffer.from(JSON.stringify(keys.map((key) => [key, context[key]])), 'utf8');
}

function headerOf({ keyName, keyVersion }: CiphertextHeader): string {
  if (!KEY_NAME.test(keyName)) throw new RangeError('invalid key name for a ciphertext header');
  if (!Number.isInteger(keyVersion) || keyVersion < 1 || keyVersion > MAX_VERSION) {
    throw new RangeError('invalid key version for a ciphertext header');
  }
  return `${CIPHERTEXT_PREFIX}:${keyName}:${keyVersion}:`;
}

function deriveMessageKeys(versionKey: Uint8Array | VersionKey, salt: Uint8Array, header: Buffer) {
  const okm = Buffer.from(
    hkdfSync('sha256', versionKey, salt, Buffer.concat([HKDF_INFO_LABEL, header]), KEY_BYTES + IV_BYTES + COMMITMENT_BYTES),
  );
  return {
    messageKey: okm.subarray(0, KEY_BYTES),
    iv: okm.subarray(KEY_BYTES, KEY_BYTES + IV_BYTES),
    commitment: okm.subarray(KEY_BYTES + IV_BYTES),
  };
}

/** Deterministic given the salt; exported for known-answer tests only (not from the package index). */
export function encryptMessageWithSalt(
  versionKey: Uint8Array | VersionKey,
  header: CiphertextHeader,
  plaintext: Uint8Array,
  context: EncryptionContext | undefined,
  salt: Uint8Array,
): string {
  if (salt.length !== SALT_BYTES) throw new RangeError(`the salt is ${SALT_BYTES} bytes`);
  const headerText = headerOf(header);
  const headerBytes = Buffer.from(headerText, 'utf8');
  const { messageKey, iv, commitment } = deriveMessageKeys(versionKey, salt, headerBytes);
  const cipher = createCipheriv('aes-256-gcm', messageKey, iv);
  cipher.setAAD(Buffer.concat([headerBytes, canonicalContext(context)]));
  const body = Buffer.concat([salt, commitment, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  messageKey.fill(0);
  return headerText + body.toString('base64');
}

/** Encrypts under one key version. Every call uses a fresh 256-bit salt, hence a fresh message key. */
export function encryptMessage(
  versionKey: Uint8Array | VersionKey,
  header: CiphertextHeader,
  plaintext: Uint8Array,
  context?: EncryptionContext,
): string {
  return encryptMessageWithSalt(versionKey, header, plaintext, context, randomBytes(SALT_BYTES));
}

/** Splits a ciphertext into header fields and body; refuses anything that is not exactly format 1. */
export function parseCiphertext(ciphertext: string): ParsedCiphertext {
  if (typeof ciphertext !== 'string') throw new InvalidCiphertextError('the ciphertext must be a string');
  const parts = ciphertext.split(':');
  if (parts.length !== 4 || parts[0] !== CIPHERTEXT_PREFIX) {
    throw new InvalidCiphertextError(`not a Keyhold ciphertext: it must look like ${CIPHERTEXT_PREFIX}:<key>:<version>:<base64>`);
  }
  const [, keyName, versionText, bodyText] = parts;
  if (!KEY_NAME.test(keyName)) throw new InvalidCiphertextError('the ciphertext names an invalid key');
  if (!VERSION.test(versionText) || Number(versionText) > MAX_VERSION) {
    throw new InvalidCiphertextError('the ciphertext names an invalid key version');
  }
  if (!BASE64.test(bodyText)) throw new InvalidCiphertextError('the ciphertext body is not standard base64');
  const body = Buffer.from(bodyText, 'base64');
  // Base64 with slack bits in its last character decodes alike; only the canonical spelling is accepted.
  if (body.length < MIN_BODY_BYTES || body.toString('base64') !== bodyText) {
    throw new InvalidCiphertextError('the ciphertext body is truncated or malformed');
  }
  return {
    formatVersion: 1,
    keyName,
    keyVersion: Number(versionText),
    header: Buffer.from(`${CIPHERTEXT_PREFIX}:${keyName}:${versionText}:`, 'utf8'),
    body,
  };
}

/**
 * Decrypts a parsed ciphertext with the version key it names. The commitment is checked first, in constant
 * time, so a different key is refused before GCM runs; any failure is an InvalidCiphertextError.
 */
export function decryptMessage(versionKey: Uint8Array | VersionKey, parsed: ParsedCiphertext, context?: EncryptionContext): Buffer {
  const { body, header } = parsed;
  if (body.length < MIN_BODY_BYTES) throw new InvalidCiphertextError();
  const salt = body.subarray(0, SALT_BYTES);
  const storedCommitment = body.subarray(SALT_BYTES, SALT_BYTES + COMMITMENT_BYTES);
  const tag = body.subarray(body.length - TAG_BYTES);
  const encrypted = body.subarray(SALT_BYTES + COMMITMENT_BYTES, body.length - TAG_BYTES);
  const { messageKey, iv, commitment } = deriveMessageKeys(versionKey, salt, header);
  try {
    if (!timingSafeEqual(commitment, storedCommitment)) throw new InvalidCiphertextError();
    const decipher = createDecipheriv('aes-256-gcm', messageKey, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.concat([header, canonicalContext(context)]));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(encrypted), decipher.final()]);
  } catch {
    throw new InvalidCiphertextError();
  } finally {
    messageKey.fill(0);
  }
}
