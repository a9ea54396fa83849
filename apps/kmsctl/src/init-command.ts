import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SHAMIR_SEAL_FILE_NAME, newShamirSealFile, serializeShamirSealFile, shamirSplitProblem } from '@keyhold/contracts';
import { splitMasterKey } from '@keyhold/crypto-core';
import { UsageError } from './audit-source';

export const INIT_USAGE = `  kmsctl init --shares N --threshold T --out DIR [--json]
      for KEYHOLD_SEAL=shamir: a new master key split into N shares, any T of which unseal Keyhold
      (2 <= T <= N <= 255). Writes DIR/${SHAMIR_SEAL_FILE_NAME} (the share set's id, N, T and a check value; no
      key, no share), never over an existing one, and prints each share ONCE on stdout. The key itself is never
      written or shown. --json prints {"file", "setId", "threshold", "shares": [...]} instead of the text.`;

export interface InitOptions {
  shares?: string;
  threshold?: string;
  out?: string;
  json?: boolean;
}

/** A whole decimal number, or NaN: `Number()` alone would take "0x10", "1e1" or " 3 ". */
function count(value: string): number {
  return /^[0-9]+$/.test(value) ? Number(value) : Number.NaN;
}

/** Creates the seal file, mode 600 whatever the umask, and only if no file is there yet (`wx`). */
function writeSealFile(path: string, text: string): void {
  try {
    writeFileSync(path, text, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw alreadyThere(path);
    if (code === 'ENOENT') throw new Error(`the directory of ${path} does not exist; create it first (kmsctl init writes only the seal file)`);
    throw error;
  }
  chmodSync(path, 0o600);
}

function alreadyThere(path: string): Error {
  return new Error(
    `${path} already exists and was left as it is: replacing it would strand the shares it was issued with. ` +
      'Choose another --out, or move the old file away if you really mean to start over.',
  );
}

function guidance(path: string, threshold: number, shares: string[]): string {
  return [
    `Master key created and split into ${shares.length} shares; any ${threshold} unseal Keyhold.`,
    `Verifier written to ${path} (mode 600; it holds no key).`,
    'Each share is printed ONCE, here, and stored nowhere. Hand each to a different person; fewer than',
    `${threshold} of them reveal nothing about the key.`,
    '',
    ...shares.map((share, index) => `share ${index + 1} of ${shares.length}: ${share}`),
    '',
    `Start Keyhold with KEYHOLD_SEAL=shamir KEYHOLD_SHAMIR_FILE=${path}`,
  ].join('\n');
}

/**
 * `kmsctl init`: issues a Shamir-sealed master key from the operator's machine, so the server host never holds
 * the shares. Exit 0 when the file is written and the shares printed, 1 when the file cannot be written (it
 * exists, say), 2 on bad usage.
 */
export async function initCommand(options: InitOptions, io: { out: (line: string) => void; err: (line: string) => void }): Promise<number> {
  if (options.shares === undefined || options.threshold === undefined) throw new UsageError('init needs --shares N and --threshold T');
  if (!options.out) throw new UsageError('init needs --out DIR (where the seal file is written)');
  const shares = count(options.shares);
  const threshold = count(options.threshold);
  const problem = shamirSplitProblem(shares, threshold);
  if (problem) throw new UsageError(problem);
  const path = join(resolve(options.out), SHAMIR_SEAL_FILE_NAME);
  // Checked before splitting only for a clear early refusal; `wx` is what guarantees no overwrite.
  if (existsSync(path)) {
    io.err(`kmsctl: ${alreadyThere(path).message}`);
    return 1;
  }
  const split = await splitMasterKey(shares, threshold);
  try {
    writeSealFile(path, serializeShamirSealFile(newShamirSealFile(split.verifier)));
  } catch (error) {
    io.err(`kmsctl: ${(error as Error).message}`);
    return 1;
  }
  // Printed only once the file is written: shares without their seal file would open nothing.
  io.out(
    options.json
      ? JSON.stringify({ file: path, setId: split.verifier.setId, threshold, shares: split.shares })
      : guidance(path, threshold, split.shares),
  );
  return 0;
}
