import { type KeyObject, createCipheriv, createDecipheriv, createSecretKey, hkdfSync } from 'node:crypto';
import { constantTimeEqual } from './constant-time';
import { InvalidCiphertextError } from './errors';
import { randomPublicBytes } from './random';

/**
 * Keyhold ciphertext, format 1 (docs/ciphertext-format.md is the specification; the vectors in
 * test-vectors/ciphertext-v1.json pin it):
 *
 *   <prefix>:<keyName>:<version>:<base64( salt[32] || commitment[32] || gcmCiphertext || gcmTag[16] )>
 *
 * Per message, HKDF-SHA256(ikm = version key, salt, info = "keyhold/ciphertext/v1" 0x00 header) gives a
 * fresh AES-256-GCM key, its IV and a 32-byte key commitment. Fresh keys lift the 2^32-messages bound of one
 * GCM key with random IVs; the commitment makes a ciphertext open under exactly one key. The header (the
 * text before the body) and the canonical context are the GCM associated data.
 *
 * The prefix names what the ciphertext holds: `kh1` data (encrypt, datakey), `khw1` a key that `wrap` wrapped.
 * Being part of the header, it is bound into the key derivation and the associated data: changing it makes
 * the ciphertext fail, so one kind is never opened as the other and each keeps to its own grant.
 */
export type CiphertextPurpose = 'data' | 'wrapped-key';

export const CIPHERTEXT_PREFIXES: Readonly<Record<CiphertextPurpose, string>> = { data: 'kh1', 'wrapped-key': 'khw1' };

const PURPOSE_OF_PREFIX: ReadonlyMap<string, CiphertextPurpose> = new Map(
  Object.entries(CIPHERTEXT_PREFIXES).map(([purpose, prefix]) => [prefix, purpose as CiphertextPurpose]),
);

export interface CiphertextHeader {
  keyName: string;
  keyVersion: number;
  /** What the ciphertext holds; 'data' when absent. */
  purpose?: CiphertextPurpose;
}

export interface ParsedCiphertext extends CiphertextHeader {
  formatVersion: 1;
  purpose: CiphertextPurpose;
  /** UTF-8 of `<prefix>:<keyName>:<version>:`, trailing colon included: exactly the bytes that were authenticated. */
  header: Buffer;
  /** salt || commitment || GCM ciphertext || tag; at least 80 bytes. */
  body: Buffer;
}

export type EncryptionContext = Readonly<Record<string, string>>;

/**
 * A version key held as an opaque key object: importing the bytes once, instead of on every message, takes
 * a measurable share of the hot path's time off each request. Interchangeable with the raw 32 bytes.
 */
export type VersionKey = KeyObject;

const VERSION_KEY_BYTES = 32;
const SALT_BYTES = 32;
const COMMITMENT_BYTES = 32;
const MESSAGE_KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const MIN_BODY_BYTES = SALT_BYTES + COMMITMENT_BYTES + TAG_BYTES;
const HKDF_INFO_LABEL = Buffer.from('keyhold/ciphertext/v1\u0000', 'utf8');
const KEY_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const VERSION = /^[1-9][0-9]{0,9}$/;
const MAX_VERSION = 2_147_483_647;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Imports a 32-byte version key once. Throws RangeError for any other length. */
export function importVersionKey(bytes: Uint8Array): VersionKey {
  if (bytes.length !== VERSION_KEY_BYTES) throw new RangeError(`a version key is ${VERSION_KEY_BYTES} bytes`);
  return createSecretKey(bytes);
}

/**
 * A short key would still "work" through HKDF and quietly weaken every message, so a wrong size is refused
 * as the caller's bug (RangeError), never reported as a bad ciphertext.
 */
function assertVersionKey(versionKey: Uint8Array | VersionKey): void {
  const size = versionKey instanceof Uint8Array ? versionKey.length : versionKey.symmetricKeySize;
  if (size !== VERSION_KEY_BYTES) throw new RangeError(`a version key is ${VERSION_KEY_BYTES} bytes`);
}

/**
 * The context as authenticated bytes: empty for none or `{}`, else UTF-8 JSON of its [key, value] pairs
 * sorted by key in UTF-16 code-unit order, e.g. `[["a","1"],["b","2"]]`. The same map in any order gives
 * the same bytes and, JSON quoting being unambiguous, no two different maps do. Throws TypeError for a
 * value that is not a string, which would otherwise encode as something another map could also produce.
 */
export function canonicalContext(context?: EncryptionContext): Buffer {
  if (context === undefined) return Buffer.alloc(0);
  const keys = Object.keys(context);
  if (keys.length === 0) return Buffer.alloc(0);
  keys.sort(); // default sort compares UTF-16 code units, as the format requires (not code points or locale)
  const pairs = keys.map((key) => {
    const value = context[key];
    if (typeof value !== 'string') throw new TypeError('encryption context values must be strings');
    return [key, value];
  });
  return Buffer.from(JSON.stringify(pairs), 'utf8');
}

function headerText({ keyName, keyVersion, purpose = 'data' }: CiphertextHeader): string {
  const prefix = CIPHERTEXT_PREFIXES[purpose];
  if (prefix === undefined) throw new RangeError('invalid purpose for a ciphertext header');
  if (!KEY_NAME.test(keyName)) throw new RangeError('invalid key name for a ciphertext header');
  if (!Number.isInteger(keyVersion) || keyVersion < 1 || keyVersion > MAX_VERSION) {
    throw new RangeError('invalid key version for a ciphertext header');
  }
  return `${prefix}:${keyName}:${keyVersion}:`;
}

interface MessageKeys {
  messageKey: Buffer;
  iv: Buffer;
  commitment: Buffer;
}

/** One HKDF call yields all three, so the commitment is bound to exactly the key and IV GCM uses. */
function deriveMessageKeys(versionKey: Uint8Array | VersionKey, salt: Uint8Array, header: Buffer): MessageKeys {
  const info = Buffer.concat([HKDF_INFO_LABEL, header]);
  const okm = Buffer.from(hkdfSync('sha256', versionKey, salt, info, MESSAGE_KEY_BYTES + IV_BYTES + COMMITMENT_BYTES));
  return {
    messageKey: okm.subarray(0, MESSAGE_KEY_BYTES),
    iv: okm.subarray(MESSAGE_KEY_BYTES, MESSAGE_KEY_BYTES + IV_BYTES),
    commitment: okm.subarray(MESSAGE_KEY_BYTES + IV_BYTES),
  };
}

function associatedData(header: Buffer, context: EncryptionContext | undefined): Buffer {
  return Buffer.concat([header, canonicalContext(context)]);
}

/**
 * Deterministic given the salt. Exported for the known-answer tests only, and deliberately not from the
 * package index: reusing a salt under one key reuses the GCM key and IV, which breaks confidentiality.
 */
export function encryptMessageWithSalt(
  versionKey: Uint8Array | VersionKey,
  header: CiphertextHeader,
  plaintext: Uint8Array,
  context: EncryptionContext | undefined,
  salt: Uint8Array,
): string {
  assertVersionKey(versionKey);
  if (salt.length !== SALT_BYTES) throw new RangeError(`the salt is ${SALT_BYTES} bytes`);
  const text = headerText(header);
  const headerBytes = Buffer.from(text, 'utf8');
  const aad = associatedData(headerBytes, context);
  const { messageKey, iv, commitment } = deriveMessageKeys(versionKey, salt, headerBytes);
  try {
    const cipher = createCipheriv('aes-256-gcm', messageKey, iv);
    cipher.setAAD(aad);
    const encrypted = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return text + Buffer.concat([salt, commitment, encrypted, cipher.getAuthTag()]).toString('base64');
  } finally {
    messageKey.fill(0);
  }
}

/**
 * Encrypts `plaintext` under one key version, bound to the header and to `context`. Every call draws a
 * fresh 256-bit salt, hence a fresh message key and IV: the same input never gives the same ciphertext.
 * Throws RangeError for a key that is not 32 bytes or a header outside the format's name/version rules,
 * and TypeError for a context value that is not a string.
 */
export function encryptMessage(
  versionKey: Uint8Array | VersionKey,
  header: CiphertextHeader,
  plaintext: Uint8Array,
  context?: EncryptionContext,
): string {
  return encryptMessageWithSalt(versionKey, header, plaintext, context, randomPublicBytes(SALT_BYTES));
}

/**
 * Splits a ciphertext into its header fields and body. Accepts exactly the strings encryptMessage produces
 * (format 1, valid name and version, canonical padded base64, body of at least 80 bytes) and throws
 * InvalidCiphertextError for anything else, with a short message that never repeats the input. It checks
 * syntax only: whether the ciphertext is authentic is for decryptMessage to say.
 */
export function parseCiphertext(ciphertext: string): ParsedCiphertext {
  if (typeof ciphertext !== 'string') throw new InvalidCiphertextError('the ciphertext must be a string');
  const parts = ciphertext.split(':');
  const purpose = parts.length === 4 ? PURPOSE_OF_PREFIX.get(parts[0]) : undefined;
  if (purpose === undefined) {
    throw new InvalidCiphertextError(
      `not a Keyhold ciphertext: it must look like ${CIPHERTEXT_PREFIXES.data}:<key>:<version>:<base64> (${CIPHERTEXT_PREFIXES['wrapped-key']}: a wrapped key)`,
    );
  }
  const [prefix, keyName, versionText, bodyText] = parts;
  if (!KEY_NAME.test(keyName)) throw new InvalidCiphertextError('the ciphertext names an invalid key');
  if (!VERSION.test(versionText) || Number(versionText) > MAX_VERSION) {
    throw new InvalidCiphertextError('the ciphertext names an invalid key version');
  }
  return {
    formatVersion: 1,
    purpose,
    keyName,
    keyVersion: Number(versionText),
    header: Buffer.from(`${prefix}:${keyName}:${versionText}:`, 'utf8'),
    body: decodeBody(bodyText),
  };
}

/**
 * The key a ciphertext's header names, read without checking anything else (the body is not even decoded):
 * null unless it starts `<prefix>:<valid key name>:`. For records of what a request was about (the audit of a
 * refused `/v1/decrypt`); parseCiphertext and decryptMessage remain the only judges of a ciphertext.
 */
export function ciphertextKeyName(ciphertext: unknown): string | null {
  if (typeof ciphertext !== 'string') return null;
  // A prefix is at most 4 characters and a key name at most 64, so the colons are near the start: never scan further.
  const prefixEnd = ciphertext.slice(0, 5).indexOf(':');
  if (prefixEnd === -1 || !PURPOSE_OF_PREFIX.has(ciphertext.slice(0, prefixEnd))) return null;
  const start = prefixEnd + 1;
  const end = ciphertext.slice(start, start + 65).indexOf(':');
  if (end === -1) return null;
  const keyName = ciphertext.slice(start, start + end);
  return KEY_NAME.test(keyName) ? keyName : null;
}

function decodeBody(bodyText: string): Buffer {
  if (!BASE64.test(bodyText)) throw new InvalidCiphertextError('the ciphertext body is not standard padded base64');
  const body = Buffer.from(bodyText, 'base64');
  // Base64 whose last character carries non-zero slack bits decodes like the canonical spelling; accepting
  // it would give one ciphertext many spellings, so only the encoder's exact output is allowed.
  if (body.toString('base64') !== bodyText) {
    throw new InvalidCiphertextError('the ciphertext body is not canonical base64');
  }
  if (body.length < MIN_BODY_BYTES) throw new InvalidCiphertextError('the ciphertext body is too short');
  return body;
}

/**
 * Decrypts a parsed ciphertext with the version key its header names, under the same context it was
 * encrypted with. The key commitment is compared first, in constant time, so a ciphertext is refused under
 * any other key before GCM runs. Every failure (altered bytes, other key, other header, other context, body
 * too short) is the same InvalidCiphertextError, which says nothing about which check failed; no plaintext
 * is returned unless the tag verified. Throws RangeError only for a key that is not 32 bytes.
 */
export function decryptMessage(
  versionKey: Uint8Array | VersionKey,
  parsed: ParsedCiphertext,
  context?: EncryptionContext,
): Buffer {
  assertVersionKey(versionKey);
  const { body, header } = parsed;
  if (body.length < MIN_BODY_BYTES) throw new InvalidCiphertextError();
  const salt = body.subarray(0, SALT_BYTES);
  const storedCommitment = body.subarray(SALT_BYTES, SALT_BYTES + COMMITMENT_BYTES);
  const encrypted = body.subarray(SALT_BYTES + COMMITMENT_BYTES, body.length - TAG_BYTES);
  const tag = body.subarray(body.length - TAG_BYTES);
  const { messageKey, iv, commitment } = deriveMessageKeys(versionKey, salt, header);
  try {
    if (!constantTimeEqual(commitment, storedCommitment)) throw new InvalidCiphertextError();
    const decipher = createDecipheriv('aes-256-gcm', messageKey, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(associatedData(header, context));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(encrypted), decipher.final()]);
  } catch {
    throw new InvalidCiphertextError();
  } finally {
    messageKey.fill(0);
  }
}
