import 'reflect-metadata';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { SHAMIR_SEAL_FILE_NAME, shamirSplitProblem } from '@keyhold/contracts';
import { generateKeyMaterial } from '@keyhold/crypto-core';
import { type KeyholdConfig, loadConfig } from '../config/keyhold-config';
import { openDatabase } from '../database/data-source';
import { startEmbeddedDatabase } from '../database/embedded-database';
import { rekeyRoot } from '../master-key/rekey-root';
import { loadMasterKey } from '../seal/load-master-key';
import { InMemoryMasterKey, type MasterKey } from '../seal/master-key';
import { MIN_PASSPHRASE_LENGTH, writeSealedMasterKeyFile } from '../seal/master-key-files';
import { ensurePkcs11WrappingKey, unsealWithPkcs11, writePkcs11WrappedMasterKey } from '../seal/pkcs11-seal';
import { initShamirMasterKey, masterKeyFromShares, readShamirSealFile } from '../seal/shamir-seal';

const USAGE = `usage: keyhold-rekey --to file|shamir|pkcs11 --out <path> [options]
  Replaces the ROOT master key (what the sealer protects) with a new random one and reseals every live
  master-key version under it, in one transaction. Run it with the server's environment (the current seal
  configuration and DATABASE_URL; with the embedded PostgreSQL, stop Keyhold first). Refused while master-key
  version 1 is live: rotate, wait for the rewrap, retire version 1 first (docs/master-key.md).
  The current root comes from the configuration: KEYHOLD_SEAL=file (key file + passphrase), pkcs11 (the
  token), or shamir (T current shares on stdin, one per line).

  --to file --out <new-file>
      the new root sealed in a new passphrase file; the new passphrase in KEYHOLD_NEW_MASTER_KEY_PASSPHRASE
      or KEYHOLD_NEW_MASTER_KEY_PASSPHRASE_FILE (at least ${MIN_PASSPHRASE_LENGTH} characters)
  --to shamir --shares N --threshold T --out <dir>
      the new root split into N new shares (printed once); writes <dir>/${SHAMIR_SEAL_FILE_NAME}
  --to pkcs11 --key-label <new label> --out <dir>
      the new root wrapped by a NEW key in the configured token; writes <dir>/master-key.pkcs11.json

  Afterwards: restart every instance with the new root, then destroy the old one (docs/master-key.md).`;

function newPassphrase(): string {
  const value =
    process.env.KEYHOLD_NEW_MASTER_KEY_PASSPHRASE ??
    (process.env.KEYHOLD_NEW_MASTER_KEY_PASSPHRASE_FILE
      ? readFileSync(process.env.KEYHOLD_NEW_MASTER_KEY_PASSPHRASE_FILE, 'utf8').replace(/\r?\n$/, '')
      : '');
  if (value.length < MIN_PASSPHRASE_LENGTH) {
    throw new Error(`set KEYHOLD_NEW_MASTER_KEY_PASSPHRASE or _FILE (at least ${MIN_PASSPHRASE_LENGTH} characters)`);
  }
  return value;
}

async function readLines(count: number): Promise<string[]> {
  const lines: string[] = [];
  if (process.stdin.isTTY) process.stderr.write(`${count} current unseal shares, one per line:\n`);
  const reader = createInterface({ input: process.stdin, terminal: false });
  for await (const line of reader) {
    if (line.trim()) lines.push(line.trim());
    if (lines.length === count) break;
  }
  reader.close();
  if (lines.length < count) throw new Error(`${count} shares are needed on stdin, got ${lines.length}`);
  return lines;
}

/** The root the server unseals with today. */
async function currentRoot(config: KeyholdConfig): Promise<MasterKey> {
  switch (config.seal.kind) {
    case 'file':
      return loadMasterKey(config);
    case 'pkcs11':
      return unsealWithPkcs11(config.seal.pkcs11 as NonNullable<KeyholdConfig['seal']['pkcs11']>);
    case 'shamir': {
      const file = readShamirSealFile(config.seal.shamirFile);
      return masterKeyFromShares(file, await readLines(file.threshold));
    }
  }
}

interface NewRoot {
  /** Writes the new root's artefact; returns what to print once the database is committed. */
  persist(key: Buffer): Promise<string>;
  /** Paths to remove if the database transaction fails after `persist`. */
  written: string[];
}

function newRootWriter(values: Record<string, string | boolean | undefined>, config: KeyholdConfig): NewRoot {
  const out = resolve(String(values.out));
  switch (values.to) {
    case 'file': {
      const passphrase = newPassphrase();
      return {
        written: [out],
        async persist(key) {
          await writeSealedMasterKeyFile(out, passphrase, { masterKey: key });
          return `New root sealed in ${out}.\nRestart Keyhold with KEYHOLD_SEAL=file KEYHOLD_MASTER_KEY_FILE=${out} and the new passphrase.`;
        },
      };
    }
    case 'shamir': {
      const shares = Number(values.shares);
      const threshold = Number(values.threshold);
      const problem = shamirSplitProblem(shares, threshold);
      if (problem) throw new Error(`${problem}\n${USAGE}`);
      const path = join(out, SHAMIR_SEAL_FILE_NAME);
      return {
        written: [path],
        async persist(key) {
          const result = await initShamirMasterKey(path, shares, threshold, key);
          return [
            `New root split into ${shares} shares (any ${threshold} unseal); verifier in ${path}.`,
            'Each share is printed ONCE. The old shares no longer open anything once the old root is gone: destroy them.',
            ...result.shares.map((share, index) => `share ${index + 1} of ${shares}: ${share}`),
            `Restart Keyhold with KEYHOLD_SEAL=shamir KEYHOLD_SHAMIR_FILE=${path}`,
          ].join('\n');
        },
      };
    }
    case 'pkcs11': {
      const current = config.seal.pkcs11;
      if (!current) throw new Error('--to pkcs11 needs the token configured (KEYHOLD_SEAL=pkcs11 and its KEYHOLD_PKCS11_* settings)');
      const keyLabel = String(values['key-label'] ?? '');
      if (!keyLabel || keyLabel === current.keyLabel) throw new Error('--key-label must name a new token key, not the current one');
      const target = { ...current, keyLabel, wrappedKeyFile: join(out, 'master-key.pkcs11.json') };
      return {
        written: [target.wrappedKeyFile],
        async persist(key) {
          await ensurePkcs11WrappingKey(target);
          await writePkcs11WrappedMasterKey(target, { masterKey: key });
          return (
            `New root wrapped by the token key ${JSON.stringify(keyLabel)} into ${target.wrappedKeyFile}.\n` +
            `Restart Keyhold with KEYHOLD_PKCS11_KEY_LABEL=${keyLabel} KEYHOLD_PKCS11_WRAPPED_KEY_FILE=${target.wrappedKeyFile}, ` +
            `then destroy the old token key ${JSON.stringify(current.keyLabel)} (e.g. pkcs11-tool --delete-object --type secrkey --label ...).`
          );
        },
      };
    }
    default:
      throw new Error(USAGE);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      to: { type: 'string' },
      out: { type: 'string' },
      shares: { type: 'string' },
      threshold: { type: 'string' },
      'key-label': { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help || !values.to || !values.out) throw new Error(USAGE);
  const config = loadConfig();
  const writer = newRootWriter(values, config);
  for (const path of writer.written) if (existsSync(path)) throw new Error(`${path} exists; the new root never overwrites a file`);
  const oldRoot = await currentRoot(config);
  const embedded = config.databaseUrl ? null : await startEmbeddedDatabase(config.home, config.embeddedPostgresPort);
  const dataSource = await openDatabase(config.databaseUrl ?? (embedded?.url as string));
  const key = generateKeyMaterial('aes-256-gcm');
  let message = '';
  try {
    const newRoot = new InMemoryMasterKey(Buffer.from(key), 1, oldRoot.protection);
    const { resealed } = await rekeyRoot(dataSource, oldRoot, newRoot, async () => {
      message = await writer.persist(key);
    }).catch((error: Error) => {
      // The transaction rolled back: whatever was written holds a root the database does not use.
      if (message) for (const path of writer.written) rmSync(path, { force: true });
      throw error;
    });
    process.stdout.write(`Resealed master-key versions ${resealed.join(', ')} under the new root.\n${message}\n`);
  } finally {
    key.fill(0);
    oldRoot.dispose?.();
    await dataSource.destroy();
    await embedded?.stop();
  }
}

main().catch((error: Error) => {
  process.stderr.write(`keyhold-rekey: ${error.message}\n`);
  process.exit(1);
});
