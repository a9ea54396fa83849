import { readFileSync } from 'node:fs';
import { ApiError, type ShamirSealFile, newShamirSealFile, parseShamirSealFile } from '@keyhold/contracts';
import {
  type DecodedShare,
  ShareFormatError,
  combineShares,
  constantTimeEqual,
  decodeShare,
  matchesKeyCheckValue,
  splitMasterKey,
} from '@keyhold/crypto-core';
import { InMemoryMasterKey } from './master-key';
import { MasterKeyFileError, writeNewSealFile } from './master-key-files';
import type { SealState } from './seal-state';

/**
 * Splits a master key (a new one unless given: keyhold-rekey passes the new root), writes the seal file at
 * `path` (mode 600; never over an existing file) and returns the shares, to be shown once. `kmsctl init` does
 * the same from the operator's machine; the file's shape and the split are shared (contracts, crypto-core).
 */
export async function initShamirMasterKey(
  path: string,
  shares: number,
  threshold: number,
  given?: Buffer,
): Promise<{ file: ShamirSealFile; shares: string[] }> {
  const split = await splitMasterKey(shares, threshold, given);
  const file = newShamirSealFile(split.verifier);
  writeNewSealFile(path, file);
  return { file, shares: split.shares };
}

/** Rebuilds the master key from T shares offline (the rekey tool), checked against the verifier file. */
export async function masterKeyFromShares(file: ShamirSealFile, texts: readonly string[]): Promise<InMemoryMasterKey> {
  const decoded = texts.map((text) => decodeShare(text));
  if (decoded.some((share) => share.setId !== file.setId)) throw new MasterKeyFileError('a share belongs to another master key (another kmsctl init)');
  if (new Set(decoded.map((share) => share.index)).size < file.threshold) {
    throw new MasterKeyFileError(`${file.threshold} distinct shares are needed`);
  }
  const key = await combineShares(decoded);
  for (const share of decoded) share.bytes.fill(0);
  if (!matchesKeyCheckValue(key, file.setId, Buffer.from(file.checkValue, 'base64'))) {
    key.fill(0);
    throw new MasterKeyFileError('these shares do not rebuild the master key (at least one is wrong)');
  }
  return new InMemoryMasterKey(key, file.version, 'shamir');
}

export function readShamirSealFile(path: string): ShamirSealFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new MasterKeyFileError(`cannot read the Shamir seal file ${path}: ${(error as Error).message}`);
  }
  const file = parseShamirSealFile(text);
  if (!file) throw new MasterKeyFileError(`${path} is not a Keyhold Shamir seal file (create one with kmsctl init)`);
  return file;
}

export interface UnsealProgress {
  sealed: boolean;
  protection: string;
  threshold: number | null;
  shares: number | null;
  received: number;
}

export const SHARE_TIMEOUT_MS = 10 * 60_000;

/**
 * Collects unseal shares in memory (never on disk or in Postgres) until T distinct valid ones are in, then
 * rebuilds the key, checks it against the verifier and unseals. A combination that does not match discards
 * every share collected; so does the timeout, counted from the first share. A restart forgets them too.
 */
export class ShamirUnsealer {
  private collected: DecodedShare[] = [];
  private firstAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly file: ShamirSealFile,
    private readonly state: SealState,
    private readonly timeoutMs = SHARE_TIMEOUT_MS,
    private readonly now: () => number = Date.now,
  ) {}

  progress(): UnsealProgress {
    this.expire();
    return {
      sealed: this.state.sealed,
      protection: this.state.protection,
      threshold: this.file.threshold,
      shares: this.file.shares,
      received: this.collected.length,
    };
  }

  /** One share; submissions are handled one at a time. */
  submit(text: unknown): Promise<UnsealProgress> {
    const next = this.queue.then(() => this.accept(text));
    this.queue = next.catch(() => undefined);
    return next;
  }

  clear(): void {
    for (const share of this.collected) share.bytes.fill(0);
    this.collected = [];
    this.firstAt = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private expire(): void {
    if (this.collected.length > 0 && this.now() - this.firstAt >= this.timeoutMs) this.clear();
  }

  private async accept(text: unknown): Promise<UnsealProgress> {
    if (!this.state.sealed) throw new ApiError('INVALID_STATE', 'Keyhold is already unsealed');
    this.expire();
    let share: DecodedShare;
    try {
      share = decodeShare(text);
    } catch (error) {
      if (error instanceof ShareFormatError) throw new ApiError('VALIDATION_FAILED', `malformed share: ${error.message}`);
      throw error;
    }
    if (share.setId !== this.file.setId) {
      throw new ApiError('VALIDATION_FAILED', 'that share belongs to another master key (another kmsctl init); nothing was counted');
    }
    const sameIndex = this.collected.find((held) => held.index === share.index);
    if (sameIndex) {
      if (constantTimeEqual(sameIndex.bytes, share.bytes)) {
        throw new ApiError('INVALID_STATE', 'that share was already submitted; submit a different one');
      }
      throw new ApiError(
        'VALIDATION_FAILED',
        'that share has the same share number as one already submitted but another value: one of the two is wrong; it was not counted',
      );
    }
    this.collected.push(share);
    if (this.collected.length === 1) {
      this.firstAt = this.now();
      this.timer = setTimeout(() => this.clear(), this.timeoutMs);
      this.timer.unref();
    }
    if (this.collected.length < this.file.threshold) return this.progress();

    const key = await combineShares(this.collected);
    const count = this.collected.length;
    this.clear();
    if (!matchesKeyCheckValue(key, this.file.setId, Buffer.from(this.file.checkValue, 'base64'))) {
      key.fill(0);
      throw new ApiError(
        'VALIDATION_FAILED',
        `these ${count} shares do not rebuild the master key (at least one is wrong); all of them were discarded, submit ${this.file.threshold} again`,
      );
    }
    await this.state.unseal(new InMemoryMasterKey(key, this.file.version, 'shamir'));
    return this.progress();
  }
}
