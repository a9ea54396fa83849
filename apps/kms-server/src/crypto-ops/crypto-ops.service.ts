import {
  ApiError,
  type BatchItemError,
  type DatakeyResponse,
  type DecryptResponse,
  type EncryptResponse,
  type EncryptionContext,
  type RandomResponse,
} from '@keyhold/contracts';
import type { GrantPolicySource } from '@keyhold/auth';
import {
  type CiphertextPurpose,
  KeyUnwrapError,
  type VersionKey,
  decryptMessage,
  encryptMessage,
  parseCiphertext,
  randomBytes,
} from '@keyhold/crypto-core';
import { versionForDecryption, versionForEncryption } from '@keyhold/key-lifecycle';
import { toApiError } from '../common/api-error.filter';
import type { KeyringCache, LoadedKey } from '../keyring/keyring-cache';
import type { UsageRecorder } from '../keyring/usage-recorder';
import { keyNotFound } from '../keys/keys.service';

interface Decrypted {
  plaintext: Buffer;
  keyName: string;
  keyVersion: number;
  purpose: CiphertextPurpose;
}

/** Why a ciphertext of the other kind is refused, and where it does open. */
const WRONG_PURPOSE: Readonly<Record<CiphertextPurpose, string>> = {
  data: 'this ciphertext holds data (kh1, from encrypt or datakey), not a wrapped key: open it with decrypt, not unwrap',
  'wrapped-key': 'this ciphertext is a wrapped key (khw1, from wrap): open it with unwrap, not decrypt',
};

/**
 * The hot path: every operation here works from the keyring cache and never waits on Postgres once a key is
 * warm. Plaintext never leaves this service except in the response it was asked for.
 */
export class CryptoOpsService {
  constructor(
    private readonly cache: KeyringCache,
    private readonly usage: UsageRecorder,
    private readonly grants: GrantPolicySource,
  ) {}

  /** `purpose` 'wrapped-key' is `wrap`: its ciphertext opens only through `unwrap` (and `decrypt`'s only through `decrypt`). */
  async encrypt(keyName: string, plaintext: Buffer, context?: EncryptionContext, purpose: CiphertextPurpose = 'data'): Promise<EncryptResponse> {
    const loaded = await this.load(keyName);
    const version = versionForEncryption(loaded.key).version;
    const ciphertext = encryptMessage(this.versionKey(loaded, version), { keyName, keyVersion: version, purpose }, plaintext, context);
    this.usage.record(loaded.key.id, version, 1);
    return { ciphertext, keyName, keyVersion: version };
  }

  /**
   * Decrypts a ciphertext. With `expectedKey` (the key named in the path) a ciphertext of another key is
   * refused; without it the key is read from the ciphertext and the caller's grant is checked against it. A
   * ciphertext of another purpose than `purpose` is refused before anything is opened ('any': re-encryption,
   * which keeps the purpose and never hands out the plaintext).
   */
  async decrypt(
    ciphertext: string,
    context: EncryptionContext | undefined,
    expectedKey: string | null,
    callerId: string,
    purpose: CiphertextPurpose | 'any' = 'data',
  ): Promise<Decrypted> {
    const parsed = parseCiphertext(ciphertext);
    if (purpose !== 'any' && parsed.purpose !== purpose) throw new ApiError('INVALID_CIPHERTEXT', WRONG_PURPOSE[parsed.purpose]);
    if (expectedKey !== null && parsed.keyName !== expectedKey) {
      throw new ApiError('INVALID_CIPHERTEXT', `the ciphertext belongs to another key, not '${expectedKey}'`);
    }
    if (expectedKey === null) this.grants.current().authorize(callerId, 'decrypt', parsed.keyName);
    const loaded = await this.load(parsed.keyName);
    versionForDecryption(loaded.key, parsed.keyVersion);
    const plaintext = decryptMessage(this.versionKey(loaded, parsed.keyVersion), parsed, context);
    this.usage.record(loaded.key.id, parsed.keyVersion, 0);
    return { plaintext, keyName: parsed.keyName, keyVersion: parsed.keyVersion, purpose: parsed.purpose };
  }

  async decryptResponse(
    ciphertext: string,
    context: EncryptionContext | undefined,
    expectedKey: string | null,
    callerId: string,
  ): Promise<DecryptResponse> {
    const result = await this.decrypt(ciphertext, context, expectedKey, callerId);
    return { plaintext: result.plaintext.toString('base64'), keyName: result.keyName, keyVersion: result.keyVersion };
  }

  /**
   * Decrypts under any enabled version and encrypts again under the primary one, as the same kind (data stays
   * data, a wrapped key stays a wrapped key); the plaintext never leaves.
   */
  async reencrypt(keyName: string, ciphertext: string, context: EncryptionContext | undefined, callerId: string): Promise<EncryptResponse> {
    const { plaintext, purpose } = await this.decrypt(ciphertext, context, keyName, callerId, 'any');
    try {
      return await this.encrypt(keyName, plaintext, context, purpose);
    } finally {
      plaintext.fill(0);
    }
  }

  async generateDataKey(
    keyName: string,
    bytes: number,
    context: EncryptionContext | undefined,
    withPlaintext: boolean,
  ): Promise<DatakeyResponse> {
    const dataKey = randomBytes(bytes);
    try {
      const encrypted = await this.encrypt(keyName, dataKey, context);
      return withPlaintext ? { plaintext: dataKey.toString('base64'), ...encrypted } : encrypted;
    } finally {
      dataKey.fill(0);
    }
  }

  random(bytes: number): RandomResponse {
    return { random: randomBytes(bytes).toString('base64') };
  }

  /** Each item gets its own answer: one bad item never fails the others. */
  async batch<TItem, TResult>(items: readonly TItem[], run: (item: TItem) => Promise<TResult>): Promise<Array<TResult | BatchItemError>> {
    const results: Array<TResult | BatchItemError> = [];
    for (const item of items) {
      try {
        results.push(await run(item));
      } catch (error) {
        const apiError = toApiError(error);
        results.push({ error: { code: apiError.code, message: apiError.message } });
      }
    }
    return results;
  }

  private async load(keyName: string): Promise<LoadedKey> {
    const loaded = await this.cache.get(keyName);
    if (!loaded) throw keyNotFound(keyName);
    return loaded;
  }

  private versionKey(loaded: LoadedKey, version: number): VersionKey {
    const key = loaded.versionKeys.get(version);
    if (loaded.damagedVersions.has(version)) throw new KeyUnwrapError();
    // A version the lifecycle allows always has material; its absence means the row is damaged.
    if (!key) throw new Error(`material for version ${version} of key '${loaded.key.name}' is missing`);
    return key;
  }
}
