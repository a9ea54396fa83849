import { once } from 'node:events';
import { type WriteStream, accessSync, constants, createWriteStream, openSync, statSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import type { AuditExportLine } from '@keyhold/contracts';
import { sha256Accumulator } from '@keyhold/crypto-core';

/** What a prune left in the archive folder: the file, its size and its SHA-256 (for the operator's inventory). */
export interface AuditArchiveFile {
  file: string;
  bytes: number;
  sha256: string;
  records: number;
}

/**
 * Refuses at start an archive folder Keyhold could not write into, rather than at the first prune, months later.
 * Returns the folder, or null when none is set.
 */
export function checkArchiveFolder(folder: string | undefined): string | null {
  if (!folder) return null;
  const refuse = (why: string) => new Error(`KEYHOLD_AUDIT_ARCHIVE_DIR=${folder}: ${why}`);
  try {
    if (!statSync(folder).isDirectory()) throw refuse('not a folder');
  } catch (error) {
    throw (error as NodeJS.ErrnoException).code ? refuse(`no such folder (${(error as NodeJS.ErrnoException).code})`) : error;
  }
  try {
    accessSync(folder, constants.W_OK | constants.X_OK);
  } catch (error) {
    throw refuse(`not writable by this process (${(error as NodeJS.ErrnoException).code})`);
  }
  return folder;
}

/**
 * One archive of the records a prune removes: the export format of docs/audit.md (JSON Lines, gzip-compressed), so
 * `kmsctl audit verify --file` checks it offline like any export. It is written to `NAME.partial`, flushed to disk
 * and only then renamed to its name: a file with the final name is complete. The prune deletes nothing before
 * `finish` resolved.
 */
export class AuditArchiveWriter {
  private readonly gzip = createGzip();
  private readonly digest = sha256Accumulator();
  private bytes = 0;
  private records = 0;
  private readonly written: Promise<void>;
  private failure: Error | null = null;

  private constructor(
    private readonly output: WriteStream,
    private readonly folder: string,
    private readonly name: string,
  ) {
    this.gzip.on('data', (chunk: Buffer) => {
      this.bytes += chunk.length;
      this.digest.update(chunk);
    });
    // 'close' comes after the data was flushed to disk (`flush`) and the file closed.
    this.written = new Promise<void>((resolve, reject) => {
      output.on('close', () => (output.writableFinished ? resolve() : reject(new Error('the archive file closed before it was complete'))));
      output.on('error', reject);
      this.gzip.on('error', reject);
    });
    this.written.catch((error: Error) => (this.failure = error));
    this.gzip.pipe(output);
  }

  /** `keyhold-audit-<first>-<through>.jsonl.gz` in `folder`; an earlier attempt's partial file is replaced. */
  static async create(folder: string, firstSequence: number, throughSequence: number): Promise<AuditArchiveWriter> {
    const name = `keyhold-audit-${firstSequence}-${throughSequence}.jsonl.gz`;
    // O_NOFOLLOW: a link planted under this name does not redirect the write elsewhere.
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;
    const path = join(folder, `${name}.partial`);
    const output = createWriteStream(path, { fd: openSync(path, flags, 0o600), flush: true });
    return new AuditArchiveWriter(output, folder, name);
  }

  async write(lines: readonly AuditExportLine[]): Promise<void> {
    if (this.failure) throw this.failure;
    if (lines.length === 0) return;
    this.records += lines.filter((line) => line.type === 'record').length;
    const text = `${lines.map((line) => JSON.stringify(line)).join('\n')}\n`;
    // Wait for room, unless the file fails meanwhile (a full disk): then the compressor never drains.
    if (!this.gzip.write(text)) await Promise.race([once(this.gzip, 'drain'), this.written]);
    if (this.failure) throw this.failure;
  }

  /** Completes the file on disk (data, then its name in the folder) and says what it holds. */
  async finish(): Promise<AuditArchiveFile> {
    this.gzip.end();
    await this.written;
    await rename(join(this.folder, `${this.name}.partial`), join(this.folder, this.name));
    const folder = await open(this.folder, 'r');
    try {
      await folder.sync(); // the rename itself survives a crash
    } finally {
      await folder.close();
    }
    return { file: this.name, bytes: this.bytes, sha256: this.digest.hex(), records: this.records };
  }

  /** Removes the partial file (the prune failed: nothing was removed, so nothing needs keeping). */
  async abort(): Promise<void> {
    this.gzip.destroy();
    this.output.destroy();
    await rm(join(this.folder, `${this.name}.partial`), { force: true }).catch(() => undefined);
  }
}
