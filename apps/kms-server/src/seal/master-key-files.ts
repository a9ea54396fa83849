import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import argon2 from 'argon2';
import { z } from 'zod';
import { aesGcmOpen, aesGcmSeal, generateKeyMaterial, randomBytes } from '@keyhold/crypto-core';
import { InMemoryMasterKey, type MasterKey } from './master-key';

export class MasterKeyFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MasterKeyFileError';
  }
}

const DEVELOPMENT_FORMAT = 'keyhold-development-master-key';
const SEALED_FORMAT = 'keyhold-sealed-master-key';
const SEALED_AAD = Buffer.from('keyhold sealed master key file v1');

/** OWASP's first Argon2id profile, raised in memory: ~0.5 s here, paid once per start. */
const DEFAULT_KDF = { memoryKiB: 65_536, iterations: 3, parallelism: 1 };

const developmentFileSchema = z
  .object({ format: z.literal(DEVELOPMENT_FORMAT), version: z.number().int().min(1), key: z.string() })
  .strict();

const sealedFileSchema = z
  .object({
    format: z.literal(SEALED_FORMAT),
    version: z.number().int().min(1),
    kdf: z
      .object({
        algorithm: z.literal('argon2id'),
        memoryKiB: z.number().int().min(19_456),
        iterations: z.number().int().min(2),
        parallelism: z.number().int().min(1),
        salt: z.string(),
      })
      .strict(),
    sealed: z.string(),
  })
  .strict();

/** A file only its owner may read or write; anything looser is refused, as ssh does for private keys. */
function assertOwnerOnly(path: string): void {
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new MasterKeyFileError(
      `${path} is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${path}`,
    );
  }
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new MasterKeyFileError(`cannot read master key file ${path}: ${(error as Error).message}`);
  }
}

/** Writes a new development master key: plain bytes in an owner-only file. Never for production. */
export function createDevelopmentMasterKeyFile(path: string): void {
  const body = { format: DEVELOPMENT_FORMAT, version: 1, key: generateKeyMaterial('aes-256-gcm').toString('base64') };
  writeNewSealFile(path, body);
}

export function isDevelopmentMasterKeyFile(path: string): boolean {
  const parsed = readJson(path) as { format?: unknown };
  return parsed?.format === DEVELOPMENT_FORMAT;
}

export function loadDevelopmentMasterKey(path: string): MasterKey {
  assertOwnerOnly(path);
  const parsed = developmentFileSchema.safeParse(readJson(path));
  if (!parsed.success) throw new MasterKeyFileError(`${path} is not a Keyhold development master key file`);
  const key = Buffer.from(parsed.data.key, 'base64');
  if (key.length !== 32) throw new MasterKeyFileError(`${path} does not hold a 32-byte key`);
  return new InMemoryMasterKey(key, parsed.data.version, 'development-file');
}

async function deriveKek(passphrase: string, salt: Buffer, kdf: typeof DEFAULT_KDF): Promise<Buffer> {
  return argon2.hash(passphrase, {
    type: argon2.argon2id,
    raw: true,
    salt,
    hashLength: 32,
    memoryCost: kdf.memoryKiB,
    timeCost: kdf.iterations,
    parallelism: kdf.parallelism,
  });
}

export const MIN_PASSPHRASE_LENGTH = 16;

/**
 * Seals a master key (a new one unless given) in a file under a key derived from `passphrase` with Argon2id.
 * The file alone, or the passphrase alone, reveals nothing.
 */
export async function writeSealedMasterKeyFile(
  path: string,
  passphrase: string,
  options: { masterKey?: Buffer; version?: number; kdf?: typeof DEFAULT_KDF } = {},
): Promise<void> {
  if (passphrase.length < MIN_PASSPHRASE_LENGTH) {
    throw new MasterKeyFileError(`the passphrase must be at least ${MIN_PASSPHRASE_LENGTH} characters`);
  }
  const kdf = options.kdf ?? DEFAULT_KDF;
  const salt = randomBytes(16);
  const kek = await deriveKek(passphrase, salt, kdf);
  const masterKey = options.masterKey ?? generateKeyMaterial('aes-256-gcm');
  const body = {
    format: SEALED_FORMAT,
    version: options.version ?? 1,
    kdf: { algorithm: 'argon2id', ...kdf, salt: salt.toString('base64') },
    sealed: aesGcmSeal(kek, masterKey, SEALED_AAD).toString('base64'),
  };
  writeNewSealFile(path, body);
}

export async function loadSealedMasterKey(path: string, passphrase: string): Promise<MasterKey> {
  assertOwnerOnly(path);
  const parsed = sealedFileSchema.safeParse(readJson(path));
  if (!parsed.success) throw new MasterKeyFileError(`${path} is not a Keyhold sealed master key file`);
  const { kdf, sealed, version } = parsed.data;
  const kek = await deriveKek(passphrase, Buffer.from(kdf.salt, 'base64'), kdf);
  try {
    return new InMemoryMasterKey(aesGcmOpen(kek, Buffer.from(sealed, 'base64'), SEALED_AAD), version, 'passphrase-file');
  } catch {
    throw new MasterKeyFileError(`the passphrase does not open ${path}`);
  } finally {
    kek.fill(0);
  }
}

/**
 * Creates a seal file (pretty JSON): never over an existing one (`wx`: replacing it would strand what it
 * opens), and readable by its owner only, whatever the umask.
 */
export function writeNewSealFile(path: string, body: object): void {
  writeFileSync(path, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
}
