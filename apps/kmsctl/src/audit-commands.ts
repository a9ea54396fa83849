import { once } from 'node:events';
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { type Gzip, createGzip } from 'node:zlib';
import { type AuditExportLine, type AuditFilter, type AuditPruneView, auditExportCheckpointRange } from '@keyhold/contracts';
import { type AuditChainPoint, publicKeyFingerprint, verifyAuditChainInPages } from '@keyhold/crypto-core';
import { type AuditMaterial, AuditDatabase, UsageError, contentFilters, readExportFile } from './audit-source';

export interface Output {
  out(line: string): void;
  err(line: string): void;
}

/**
 * `kmsctl audit verify`: checks the hash chain and the signed checkpoints of export files or of a range read from
 * the database, offline against the audit public key. Exit 0 when intact, 1 at the first broken link.
 *
 * Several files are one chain in the order given: the archives of successive prunes, then an export of what the
 * database holds now, prove the trail from #1 to that export's end. Each file after the first must continue where
 * the one before ends: from the signed prune it carries, or, without one, linking to its last record. With
 * `--database-url` given alongside the files, what the database holds after the last file is verified last, the same
 * way (the environment's KEYHOLD_AUDIT_DATABASE_URL alone does not add it).
 */
export async function verifyCommand(
  options: { files?: string[]; databaseUrl?: string; databaseAfterFiles?: boolean; publicKey?: string; fromSequence?: number; toSequence?: number },
  io: Output,
): Promise<number> {
  if (!options.publicKey) throw new UsageError('--public-key FILE is required: the audit public key saved from `kmsctl audit public-key` or the admin API (never trust the one in the database being checked)');
  const publicKeyPem = readFileSync(options.publicKey, 'utf8');
  const verify = async (material: AuditMaterial, after?: AuditChainPoint) => {
    if (material.filteredBy.length > 0) {
      throw new UsageError(`this export is filtered by ${material.filteredBy.join(', ')}: records are missing by design, so it cannot be verified as a chain; export a time or sequence range without those filters`);
    }
    return verifyAuditChainInPages(material.pages, {
      checkpoints: material.checkpoints,
      publicKeyPem,
      anchor: material.anchor ?? (material.prune ? undefined : after),
      prune: material.prune,
      head: material.head,
      onPage: (records) => progress.verified(records),
    });
  };
  const progress = new VerifyProgress(io);
  const files = options.files ?? [];
  // The parts of the chain, in order: the files, then (when asked for alongside them) what the database holds after.
  const segments: Array<{ name: string; run<T>(use: (material: AuditMaterial) => Promise<T>, after?: AuditChainPoint): Promise<T> }> = files.map((file) => ({
    name: file,
    run: async (use) => use(await readExportFile(file)),
  }));
  const databaseUrl = files.length === 0 || options.databaseAfterFiles ? options.databaseUrl : undefined;
  if (databaseUrl) {
    segments.push({
      name: 'the database',
      run: async (use, after) => {
        const db = await AuditDatabase.connect(databaseUrl);
        try {
          return await db.material(after ? after.sequence + 1 : (options.fromSequence ?? 1), options.toSequence, use);
        } finally {
          await db.close();
        }
      },
    });
  }
  if (segments.length === 0) throw new UsageError('give --file EXPORT.jsonl (one or more), --database-url URL, or both (the files first)');
  // What the parts verified, together.
  let records = 0;
  let checkpoints = 0;
  let first: number | null = null;
  let lastCheckpoint: number | null = null;
  let prune: AuditPruneView | undefined;
  let end: AuditChainPoint | undefined;
  for (const [index, segment] of segments.entries()) {
    const previous = segments[index - 1]?.name;
    const result = await segment.run(async (material) => {
      if (index === 0) prune = material.prune;
      const gap = end && previous ? discontinuity(previous, end, segment.name, material) : null;
      return gap ?? (await verify(material, end));
    }, end);
    if (typeof result === 'string') {
      io.out(result);
      return 1;
    }
    if (!result.ok) {
      io.out(`BROKEN at #${result.broken.sequence} (${result.broken.kind})${segments.length > 1 ? ` in ${segment.name}` : ''}: ${result.broken.message}`);
      return 1;
    }
    records += result.records;
    checkpoints += result.checkpoints;
    first ??= result.firstSequence;
    lastCheckpoint = result.lastCheckpointSequence ?? lastCheckpoint;
    if (result.lastSequence !== null && result.lastHash !== null) end = { sequence: result.lastSequence, hash: result.lastHash };
  }
  const last = end?.sequence ?? null;
  const range = records ? `#${first}..#${last}` : 'no records';
  const parts = [files.length ? `${files.length} file${files.length === 1 ? '' : 's'}` : null, databaseUrl && files.length ? 'the database' : null].filter(Boolean);
  const across = segments.length > 1 ? ` in ${parts.join(' and ')}, each continuing the one before` : '';
  // What a signature does not cover, the chain alone cannot prove: a rewrite re-hashed to the end, or a tail cut off.
  const covered = lastCheckpoint === null
    ? 'no signed checkpoint within the range: the chain is consistent, but neither its content nor its end is proven'
    : `latest signed checkpoint #${lastCheckpoint}; ${Number(last) - lastCheckpoint} record(s) after it are chained but not yet signed`;
  const pruned = prune ? `; records through #${prune.throughSequence} were pruned by Keyhold at ${prune.time} (signed prune verified)` : '';
  io.out(`OK: ${records} record(s) ${range}${across}, ${checkpoints} checkpoint(s) verified with key ${publicKeyFingerprint(publicKeyPem)}; ${covered}${pruned}`);
  return 0;
}

/** A line on stderr per million records verified: a long verification shows it is moving (stdout keeps the verdict). */
export class VerifyProgress {
  static readonly EVERY = 1_000_000;
  private records = 0;
  private readonly started = Date.now();

  constructor(private readonly io: Output) {}

  verified(records: readonly { sequence: number }[]): void {
    const before = Math.floor(this.records / VerifyProgress.EVERY);
    this.records += records.length;
    if (Math.floor(this.records / VerifyProgress.EVERY) > before) {
      const seconds = Math.round((Date.now() - this.started) / 1000);
      this.io.err(`verified ${this.records} records so far, through #${records[records.length - 1].sequence} (${seconds} s)`);
    }
  }
}

/** Why `next` does not continue where `previous` ended (its prune is elsewhere, or its record there differs), or null. */
function discontinuity(previous: string, end: AuditChainPoint, next: string, material: AuditMaterial): string | null {
  const { prune, anchor } = material;
  if (!prune) {
    return anchor && anchor.sequence === end.sequence && anchor.hash !== end.hash
      ? `BROKEN at #${end.sequence} (altered): ${next} holds a record #${end.sequence} other than the one ${previous} ends with`
      : null;
  }
  if (prune.throughSequence > end.sequence) {
    return `BROKEN at #${end.sequence + 1} (deleted): ${previous} ends at #${end.sequence} but ${next} continues after #${prune.throughSequence}: records #${end.sequence + 1}..#${prune.throughSequence} are in neither`;
  }
  if (prune.throughSequence < end.sequence) {
    return `BROKEN at #${prune.throughSequence + 1} (reordered): ${next} continues after #${prune.throughSequence}, inside ${previous} (which ends at #${end.sequence}): give the files in chain order, without overlaps`;
  }
  if (prune.anchorHash !== end.hash) {
    return `BROKEN at #${end.sequence} (altered): ${next} continues from a record #${end.sequence} other than the one ${previous} ends with`;
  }
  return null;
}

/** `kmsctl audit export`: JSON Lines (a header, records in sequence order, checkpoints) from the database. */
export async function exportCommand(options: { databaseUrl?: string; out?: string; filter: AuditFilter }, io: Output): Promise<number> {
  if (!options.databaseUrl) throw new UsageError('give --database-url URL (a read-only role is enough) or KEYHOLD_AUDIT_DATABASE_URL');
  const db = await AuditDatabase.connect(options.databaseUrl);
  let file: ExportFile | null = null;
  const write = async (line: AuditExportLine) => {
    if (file) await file.write(`${JSON.stringify(line)}\n`);
    else io.out(JSON.stringify(line));
  };
  try {
    if (options.out) file = await ExportFile.create(options.out);
    const publicKey = await db.publicKeyPem();
    await write({ type: 'header', format: 'keyhold-audit-export-v1', exportedAt: new Date().toISOString(), filters: options.filter, keyFingerprint: publicKey ? publicKeyFingerprint(publicKey) : null });
    let count = 0;
    // One snapshot: a checkpoint signed while the export runs must not come without its record.
    await db.snapshot(async () => {
      let first: number | null = null;
      let last = 0;
      const prune = await db.latestPrune();
      for await (const record of db.records(options.filter)) {
        // The prune the records continue from comes before them, as in the admin API's export.
        if (first === null && prune && record.sequence === prune.throughSequence + 1) await write({ type: 'prune', ...prune });
        first ??= record.sequence;
        last = record.sequence;
        count += 1;
        await write({ type: 'record', ...record });
      }
      const range = auditExportCheckpointRange(options.filter, first, first === null ? null : last);
      if (range) for (const checkpoint of await db.checkpoints(...range)) await write({ type: 'checkpoint', ...checkpoint });
    });
    await file?.finish();
    const note = contentFilters(options.filter).length ? ' (filtered: for reading, not for chain verification)' : '';
    io.err(`exported ${count} record(s)${note}${file?.compressed ? ', gzip-compressed' : ''}`);
    return 0;
  } catch (error) {
    await file?.abort();
    throw error;
  } finally {
    await db.close();
  }
}

/**
 * `--out FILE`: written as FILE.partial and renamed once complete (an export cut short never sits under the name
 * given, where it could pass for a whole one); gzip-compressed when the name ends in `.gz`. Writes wait for the disk,
 * so memory stays bounded whatever the export's size.
 */
class ExportFile {
  private constructor(
    private readonly path: string,
    private readonly input: Writable,
    private readonly done: Promise<void>,
    readonly compressed: boolean,
  ) {}

  static async create(path: string): Promise<ExportFile> {
    const output = createWriteStream(`${path}.partial`, { mode: 0o600 });
    await new Promise<void>((resolve, reject) => output.once('ready', resolve).once('error', reject));
    const compressed = path.endsWith('.gz');
    const input = compressed ? createGzip() : output;
    const done = compressed ? pipeline(input as Gzip, output) : finished(output);
    done.catch(() => undefined); // awaited in finish; an early failure also shows in the next write
    return new ExportFile(path, input, done, compressed);
  }

  async write(text: string): Promise<void> {
    if (!this.input.write(text)) await once(this.input, 'drain');
  }

  async finish(): Promise<void> {
    this.input.end();
    await this.done;
    await rename(`${this.path}.partial`, this.path);
  }

  async abort(): Promise<void> {
    this.input.destroy();
    await rm(`${this.path}.partial`, { force: true });
  }
}

/** `kmsctl audit public-key`: the checkpoint public key (PEM) and its fingerprint. */
export async function publicKeyCommand(options: { databaseUrl?: string; out?: string }, io: Output): Promise<number> {
  if (!options.databaseUrl) throw new UsageError('give --database-url URL or KEYHOLD_AUDIT_DATABASE_URL (or read GET /api/v1/audit/public-key on the admin plane)');
  const db = await AuditDatabase.connect(options.databaseUrl);
  try {
    const pem = await db.publicKeyPem();
    if (!pem) throw new UsageError('no audit key in this database yet: Keyhold creates it at its first unsealed start');
    if (options.out) writeFileSync(options.out, pem);
    else io.out(pem.trimEnd());
    io.err(`fingerprint ${publicKeyFingerprint(pem)}`);
    return 0;
  } finally {
    await db.close();
  }
}
