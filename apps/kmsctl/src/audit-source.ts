import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import pg from 'pg';
import {
  AUDIT_CHAIN_HEAD,
  AUDIT_CHECKPOINTS_IN_RANGE,
  AUDIT_LATEST_PRUNE,
  type AuditCheckpointView,
  type AuditExportLine,
  type AuditFilter,
  type AuditPruneView,
  type AuditRecordView,
  auditCheckpointFromRow,
  auditPruneFromRow,
  auditRecordPagesByCursor,
  auditRecordPagesInRange,
} from '@keyhold/contracts';
import { GENESIS_HASH } from '@keyhold/crypto-core';

const PAGE = 5000;
const INSUFFICIENT_PRIVILEGE = '42501';

/**
 * What `verify` needs: the records in the order given, read page by page (a chain of any length verifies in bounded
 * memory), the checkpoints, and what is known about the chain around them.
 */
export interface AuditMaterial {
  pages: AsyncIterable<AuditRecordView[]>;
  /** In sequence order, read as the pages need them (a year of checkpoints is millions). */
  checkpoints: AsyncIterable<AuditCheckpointView>;
  /** The record before the first one (sequence 0 and the genesis hash from 1), when known. */
  anchor?: { sequence: number; hash: string };
  /** The latest prune, when the records start right after it: their first link is checked against it. */
  prune?: AuditPruneView;
  /** The database's chain head, when the range runs to the end. */
  head?: { sequence: number; hash: string };
  /** Filters that make the range non-contiguous (set on filtered exports). */
  filteredBy: string[];
}

/** The lines of an export file, plain or gzip-compressed (told by its first bytes, whatever its name). */
async function* exportLines(path: string): AsyncGenerator<{ text: string; number: number }> {
  let magic: Buffer;
  try {
    const fd = openSync(path, 'r');
    magic = Buffer.alloc(2);
    readSync(fd, magic, 0, 2, 0);
    closeSync(fd);
  } catch (error) {
    throw new UsageError(`cannot read ${path}: ${(error as Error).message}`);
  }
  const file = createReadStream(path);
  const input = magic[0] === 0x1f && magic[1] === 0x8b ? file.pipe(createGunzip()) : file;
  file.on('error', (error) => input.destroy(error));
  let number = 0;
  try {
    for await (const text of createInterface({ input, crlfDelay: Infinity })) {
      number += 1;
      yield { text, number };
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    // A gzip file cut short, say: no verdict on a file that cannot be read to its end.
    throw new Error(`cannot read ${path} after line ${number}: ${(error as Error).message}`);
  }
}

function parseExportLine(path: string, text: string, number: number): AuditExportLine {
  let line: AuditExportLine;
  try {
    line = JSON.parse(text) as AuditExportLine;
  } catch {
    throw new UsageError(`${path}:${number}: not a JSON line`);
  }
  if (!['header', 'record', 'checkpoint', 'prune'].includes(line?.type)) {
    throw new UsageError(`${path}:${number}: unknown line type ${JSON.stringify(line?.type)}`);
  }
  return line;
}

/**
 * How Keyhold writes record and checkpoint lines (`type` first): each reading of the file parses only the lines it
 * needs. A line that starts otherwise is parsed by every reading, so one written differently is still read right.
 */
const RECORD_LINE = '{"type":"record"';
const CHECKPOINT_LINE = '{"type":"checkpoint"';

/**
 * Reads a JSON Lines export (header, prune, records, checkpoints; plain or gzip), keeping the line order: order is
 * evidence. The file is read once for the header and the prune, then twice side by side as verification goes: for
 * the records, page by page, and for the checkpoints (which must be in sequence order, as Keyhold writes them).
 */
export async function readExportFile(path: string, pageSize = PAGE): Promise<AuditMaterial> {
  let prune: AuditPruneView | undefined;
  let filteredBy: string[] = [];
  for await (const { text, number } of exportLines(path)) {
    if (text.trim() === '' || text.startsWith(RECORD_LINE) || text.startsWith(CHECKPOINT_LINE)) continue;
    const { type, ...rest } = parseExportLine(path, text, number);
    if (type === 'prune') prune = rest as AuditPruneView;
    else if (type === 'header') filteredBy = contentFilters((rest as { filters?: AuditFilter }).filters ?? {});
  }
  async function* checkpoints(): AsyncGenerator<AuditCheckpointView> {
    for await (const { text, number } of exportLines(path)) {
      if (text.trim() === '' || text.startsWith(RECORD_LINE)) continue;
      const { type, ...rest } = parseExportLine(path, text, number);
      if (type === 'checkpoint') yield rest as AuditCheckpointView;
    }
  }
  async function* pages(): AsyncGenerator<AuditRecordView[]> {
    let page: AuditRecordView[] = [];
    for await (const { text, number } of exportLines(path)) {
      if (text.trim() === '' || text.startsWith(CHECKPOINT_LINE)) continue;
      const { type, ...rest } = parseExportLine(path, text, number);
      if (type !== 'record') continue;
      page.push(rest as AuditRecordView);
      if (page.length === pageSize) {
        yield page;
        page = [];
      }
    }
    yield page;
  }
  return { pages: pages(), checkpoints: checkpoints(), prune, filteredBy };
}

/** A read-only connection to Keyhold's database (a role with SELECT on the keyhold_audit_* tables is enough). */
export class AuditDatabase {
  private constructor(private readonly client: pg.Client) {}

  static async connect(url: string): Promise<AuditDatabase> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    // Read-only on our side too, whatever the role may do.
    await client.query('SET default_transaction_read_only = on');
    return new AuditDatabase(client);
  }

  close(): Promise<void> {
    return this.client.end();
  }

  /** The rows a statement returns: how the shared readers in @keyhold/contracts query. */
  private readonly rows = async (sql: string, values?: unknown[]): Promise<Array<Record<string, unknown>>> => (await this.client.query(sql, values)).rows;

  /** Records matching `filter`, in sequence order, through one cursor: only within `snapshot`. */
  async *records(filter: AuditFilter): AsyncGenerator<AuditRecordView> {
    for await (const page of auditRecordPagesByCursor(this.rows, filter, PAGE)) yield* page;
  }

  /** The checkpoints in a sequence range, in order, a page at a time. */
  async *checkpointPages(fromSequence: number, toSequence: number): AsyncGenerator<AuditCheckpointView> {
    let from = fromSequence;
    for (;;) {
      const { rows } = await this.client.query(
        'SELECT * FROM keyhold_audit_checkpoints WHERE sequence >= $1 AND sequence <= $2 ORDER BY sequence LIMIT $3',
        [from, toSequence, PAGE],
      );
      for (const row of rows) yield auditCheckpointFromRow(row);
      if (rows.length < PAGE) return;
      from = Number(rows[rows.length - 1].sequence) + 1;
    }
  }

  async checkpoints(fromSequence: number, toSequence: number): Promise<AuditCheckpointView[]> {
    const { rows } = await this.client.query(AUDIT_CHECKPOINTS_IN_RANGE, [fromSequence, toSequence]);
    return rows.map(auditCheckpointFromRow);
  }

  async hashOf(sequence: number): Promise<string | undefined> {
    const { rows } = await this.client.query(`SELECT hash FROM keyhold_audit_records WHERE sequence = $1`, [sequence]);
    return rows[0]?.hash;
  }

  /** The latest prune, if any (a database from before retention existed has no table for it: none). */
  async latestPrune(): Promise<AuditPruneView | undefined> {
    const { rows } = await this.client.query(`SELECT to_regclass('keyhold_audit_prunes') IS NOT NULL AS present`);
    if (!rows[0]?.present) return undefined;
    try {
      const latest = await this.client.query(AUDIT_LATEST_PRUNE);
      return latest.rows[0] ? auditPruneFromRow(latest.rows[0]) : undefined;
    } catch (error) {
      if ((error as { code?: string }).code !== INSUFFICIENT_PRIVILEGE) throw error;
      throw new UsageError('this role cannot read keyhold_audit_prunes, which verification needs: GRANT SELECT ON keyhold_audit_prunes TO <this role> (docs/audit.md)');
    }
  }

  async head(): Promise<{ sequence: number; hash: string }> {
    const { rows } = await this.client.query(AUDIT_CHAIN_HEAD);
    if (!rows[0]) throw new UsageError('this database has no Keyhold audit chain (keyhold_audit_chain_head is empty)');
    return { sequence: Number(rows[0].sequence), hash: rows[0].hash };
  }

  async publicKeyPem(): Promise<string | null> {
    const { rows } = await this.client.query(`SELECT public_key FROM keyhold_audit_keys WHERE purpose = 'checkpoint-signing'`);
    return rows[0]?.public_key ?? null;
  }

  /**
   * Everything `verify` needs for a sequence range (the whole chain by default), read in one snapshot so that
   * records, checkpoints and head agree while Keyhold keeps appending. When the range runs to the head (no end,
   * or an end past the last record) the head and every checkpoint from the start of the range come along: a
   * signed checkpoint past the last record is how a deleted tail with a rewound head is caught. A range from before
   * the latest prune starts after it, anchored on it. `use` runs within the snapshot, while the records are read.
   */
  material<T>(requestedFrom: number, toSequence: number | undefined, use: (material: AuditMaterial) => Promise<T>): Promise<T> {
    return this.snapshot(async () => {
      const head = await this.head();
      const latestPrune = await this.latestPrune();
      const prune = latestPrune && requestedFrom <= latestPrune.throughSequence + 1 ? latestPrune : undefined;
      const fromSequence = prune ? prune.throughSequence + 1 : requestedFrom;
      const last = toSequence === undefined ? head.sequence : await this.lastSequenceIn(fromSequence, toSequence);
      const toHead = toSequence === undefined || toSequence >= head.sequence || last < toSequence;
      const anchorHash = prune ? undefined : fromSequence > 1 ? await this.hashOf(fromSequence - 1) : GENESIS_HASH;
      return use({
        pages: auditRecordPagesInRange(this.rows, fromSequence - 1, toSequence ?? Number.MAX_SAFE_INTEGER, PAGE),
        checkpoints: this.checkpointPages(fromSequence, toHead ? Number.MAX_SAFE_INTEGER : toSequence),
        anchor: anchorHash === undefined ? undefined : { sequence: fromSequence - 1, hash: anchorHash },
        prune,
        head: toHead ? head : undefined,
        filteredBy: [],
      });
    });
  }

  /** The last record in a sequence range (fromSequence - 1 when it holds none). */
  private async lastSequenceIn(fromSequence: number, toSequence: number): Promise<number> {
    const { rows } = await this.client.query('SELECT max(sequence)::text AS last FROM keyhold_audit_records WHERE sequence >= $1 AND sequence <= $2', [fromSequence, toSequence]);
    return rows[0]?.last ? Number(rows[0].last) : fromSequence - 1;
  }

  /** Runs `read` in one snapshot (a read-only REPEATABLE READ transaction): what it reads agrees with itself. */
  async snapshot<T>(read: () => Promise<T>): Promise<T> {
    await this.client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      return await read();
    } finally {
      await this.client.query('COMMIT');
    }
  }
}

export class UsageError extends Error {}

/** Filters that drop records from inside a range (time and sequence bounds keep it contiguous). */
export function contentFilters(filter: AuditFilter): string[] {
  return (['actor', 'key', 'operation', 'outcome'] as const).filter((name) => filter[name] !== undefined);
}
