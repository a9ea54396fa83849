import { readFileSync } from 'node:fs';
import * as pkcs11js from 'pkcs11js';
import { z } from 'zod';
import { generateKeyMaterial, randomBytes } from '@keyhold/crypto-core';
import type { Pkcs11Config } from '../config/keyhold-config';
import { InMemoryMasterKey, type MasterKey } from './master-key';
import { MasterKeyFileError, writeNewSealFile } from './master-key-files';

const PKCS11_FORMAT = 'keyhold-pkcs11-wrapped-master-key';
const AAD = Buffer.from('keyhold pkcs11 wrapped master key v1');

const wrappedFileSchema = z
  .object({
    format: z.literal(PKCS11_FORMAT),
    version: z.number().int().min(1),
    keyLabel: z.string(),
    mechanism: z.literal('CKM_AES_GCM'),
    iv: z.string(),
    sealed: z.string(),
  })
  .strict();

export class Pkcs11SealError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Pkcs11SealError';
  }
}

type Handle = Buffer;

/** Opens a logged-in session on the configured token, runs `fn`, and always logs out and finalises. */
async function withSession<T>(config: Pkcs11Config, fn: (module: pkcs11js.PKCS11, session: Handle) => T): Promise<T> {
  const module = new pkcs11js.PKCS11();
  try {
    module.load(config.library);
  } catch (error) {
    throw new Pkcs11SealError(`cannot load the PKCS#11 library ${config.library}: ${(error as Error).message}`);
  }
  module.C_Initialize();
  try {
    const slots = module.C_GetSlotList(true);
    const slot = slots.find((handle) => {
      if (config.slot !== null) return handle.readBigUInt64LE(0) === BigInt(config.slot);
      return module.C_GetTokenInfo(handle).label.trim() === config.tokenLabel;
    });
    if (!slot) {
      throw new Pkcs11SealError(
        config.slot !== null ? `no PKCS#11 token in slot ${config.slot}` : `no PKCS#11 token labelled ${JSON.stringify(config.tokenLabel)}`,
      );
    }
    const session = module.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    try {
      try {
        module.C_Login(session, pkcs11js.CKU_USER, config.pin);
      } catch (error) {
        throw new Pkcs11SealError(`the token refused the PIN (${(error as Error).message.split(':')[0]})`);
      }
      try {
        return fn(module, session);
      } finally {
        module.C_Logout(session);
      }
    } finally {
      module.C_CloseSession(session);
    }
  } finally {
    module.C_Finalize();
  }
}

function findKey(module: pkcs11js.PKCS11, session: Handle, label: string): Handle | null {
  module.C_FindObjectsInit(session, [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_LABEL, value: label },
  ]);
  try {
    return module.C_FindObjects(session);
  } finally {
    module.C_FindObjectsFinal(session);
  }
}

function gcm(iv: Buffer): pkcs11js.Mechanism {
  return { mechanism: pkcs11js.CKM_AES_GCM, parameter: { type: pkcs11js.CK_PARAMS_AES_GCM, iv, ivBits: iv.length * 8, aad: AAD, tagBits: 128 } as pkcs11js.GcmParams };
}

/** Creates the token's AES-256 wrapping key (sensitive, never extractable) unless one with that label exists. */
export async function ensurePkcs11WrappingKey(config: Pkcs11Config): Promise<'created' | 'exists'> {
  return withSession(config, (module, session) => {
    if (findKey(module, session, config.keyLabel)) return 'exists';
    module.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
      { type: pkcs11js.CKA_LABEL, value: config.keyLabel },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_ENCRYPT, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: true },
    ]);
    return 'created';
  });
}

/** Generates a master key (unless given), encrypts it with AES-GCM inside the token and writes the result. */
export async function writePkcs11WrappedMasterKey(config: Pkcs11Config, options: { masterKey?: Buffer; version?: number } = {}): Promise<void> {
  const masterKey = options.masterKey ?? generateKeyMaterial('aes-256-gcm');
  const iv = randomBytes(12);
  const sealed = await withSession(config, (module, session) => {
    const key = findKey(module, session, config.keyLabel);
    if (!key) throw new Pkcs11SealError(`the token holds no key labelled ${JSON.stringify(config.keyLabel)}`);
    module.C_EncryptInit(session, gcm(iv), key);
    return Buffer.from(module.C_Encrypt(session, masterKey, Buffer.alloc(masterKey.length + 16)));
  });
  if (!options.masterKey) masterKey.fill(0);
  const body = {
    format: PKCS11_FORMAT,
    version: options.version ?? 1,
    keyLabel: config.keyLabel,
    mechanism: 'CKM_AES_GCM',
    iv: iv.toString('base64'),
    sealed: sealed.toString('base64'),
  };
  writeNewSealFile(config.wrappedKeyFile, body);
}

/** Decrypts the wrapped master key inside the token. */
export async function unsealWithPkcs11(config: Pkcs11Config): Promise<MasterKey> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(config.wrappedKeyFile, 'utf8'));
  } catch (error) {
    throw new MasterKeyFileError(`cannot read ${config.wrappedKeyFile}: ${(error as Error).message}`);
  }
  const parsed = wrappedFileSchema.safeParse(raw);
  if (!parsed.success) throw new MasterKeyFileError(`${config.wrappedKeyFile} is not a Keyhold PKCS#11-wrapped master key file`);
  const { iv, sealed, version } = parsed.data;
  const material = await withSession(config, (module, session) => {
    const key = findKey(module, session, parsed.data.keyLabel);
    if (!key) throw new Pkcs11SealError(`the token holds no key labelled ${JSON.stringify(parsed.data.keyLabel)}`);
    const input = Buffer.from(sealed, 'base64');
    module.C_DecryptInit(session, gcm(Buffer.from(iv, 'base64')), key);
    try {
      return Buffer.from(module.C_Decrypt(session, input, Buffer.alloc(input.length)));
    } catch {
      throw new Pkcs11SealError(`the token's key does not open ${config.wrappedKeyFile} (another token or key, or an altered file)`);
    }
  });
  if (material.length !== 32) throw new Pkcs11SealError(`${config.wrappedKeyFile} does not hold a 32-byte key`);
  return new InMemoryMasterKey(material, version, 'pkcs11');
}
