import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { AuditCheckpointView, AuditExportLine, AuditFilter, AuditRecordView } from '@keyhold/contracts';

type Row = Record<string, unknown>;
const PAGE = 5000;

/** What `verify` needs: records in the order given, checkpoints, and what is known about the chain around them. */
export interface AuditMaterial {
  records: AuditRecordView[];
  checkpoints: AuditCheckpointView[];
  /** Hash of the record before the first one, when the range does not start at 1 and it is known. */
  anchorHash?: string;
  /** The database's chain head, when the range runs to the end. */
  head?: { sequence: number; hash: string };
  /** Filters that make the range non-contiguous (set on filtered exports). */
  filteredBy: string[];
}

/** Reads a JSON Lines export (header, records, checkpoints), keeping the line order: order is evidence. */
export function readExportFile(path: string): AuditMaterial {
  const records: AuditRecordView[] = [];
  const checkpoints: AuditCheckpointView[] = [];
  let filteredBy: string[] = [];
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((text, index) => {
      if (text.trim() === '') return;
      let line: AuditExportLine;
      try {
        line = JSON.parse(text) as AuditExportLine;
      } catch {
        throw new UsageError(`${path}:${index + 1}: not a JSON line`);
      }
      const { type, ...rest } = line;
      if (type === 'record') records.push(rest as AuditRecordView);
      else if (type === 'checkpoint') checkpoints.push(rest as AuditCheckpointView);
      else if (type === 'header') filteredBy = contentFilters((rest as { filters?: AuditFilter }).filters ?? {});
      else throw new UsageError(`${path}:${index + 1}: unknown line type ${JSON.stringify(type)}`);
    });
  return { records, checkpoints, filteredBy };
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

  /** Records matching `filter`, in sequence order, read page by page. */
  async *records(filter: AuditFilter): AsyncGenerator<AuditRecordView> {
    let after = 0;
    for (;;) {
      const where: string[] = ['sequence > $1'];
      const values: unknown[] = [after];
      const add = (clause: string, value: unknown) => {
        values.push(value);
        where.push(clause.replace('?', `$${values.length}`));
      };
      if (filter.from) add('time >= ?', filter.from);
      if (filter.to) add('time < ?', filter.to);
      if (filter.actor) add('actor = ?', filter.actor);
      if (filter.key) add('key_name = ?', filter.key);
      if (filter.operation) add('operation = ?', filter.operation);
      if (filter.outcome) add('outcome = ?', filter.outcome);
      if (filter.fromSequence) add('sequence >= ?', filter.fromSequence);
      if (filter.toSequence) add('sequence <= ?', filter.toSequence);
      const { rows } = await this.client.query(
        `SELECT * FROM keyhold_audit_records WHERE ${where.join(' AND ')} ORDER BY sequence LIMIT ${PAGE}`,
        values,
      );
      for (const row of rows) yield toRecord(row);
      if (rows.length < PAGE) return;
      after = Number(rows[rows.length - 1].sequence);
    }
  }

  async checkpoints(fromSequence: number, toSequence: number): Promise<AuditCheckpointView[]> {
    const { rows } = await this.client.query(
      `SELECT * FROM keyhold_audit_checkpoints WHERE sequence BETWEEN $1 AND $2 ORDER BY sequence`,
      [fromSequence, toSequence],
    );
    return rows.map(toCheckpoint);
  }

  async hashOf(sequence: number): Promise<string | undefined> {
    const { rows } = await this.client.query(`SELECT hash FROM keyhold_audit_records WHERE sequence = $1`, [sequence]);
    return rows[0]?.hash;
  }

  async head(): Promise<{ sequence: number; hash: string }> {
    const { rows } = await this.client.query(`SELECT sequence::text AS sequence, hash FROM keyhold_audit_chain_head WHERE id = 1`);
    if (!rows[0]) throw new UsageError('this database has no Keyhold audit chain (keyhold_audit_chain_head is empty)');
    return { sequence: Number(rows[0].sequence), hash: rows[0].hash };
  }

  async publicKeyPem(): Promise<string | null> {
    const { rows } = await this.client.query(`SELECT public_key FROM keyhold_audit_keys WHERE purpose = 'checkpoint-signing'`);
    return rows[0]?.public_key ?? null;
  }

  /** Everything `verify` needs for a sequence range (the whole chain by default). */
  async material(fromSequence: number, toSequence: number | undefined): Promise<AuditMaterial> {
    const records: AuditRecordView[] = [];
    for await (const record of this.records({ fromSequence, toSequence })) records.push(record);
    const last = records.length ? records[records.length - 1].sequence : fromSequence;
    return {
      records,
      checkpoints: await this.checkpoints(fromSequence, toSequence ?? Math.max(last, fromSequence)),
      anchorHash: fromSequence > 1 ? await this.hashOf(fromSequence - 1) : undefined,
      head: toSequence === undefined ? await this.head() : undefined,
      filteredBy: [],
    };
  }
}

export class UsageError extends Error {}

/** Filters that drop records from inside a range (time and sequence bounds keep it contiguous). */
export function contentFilters(filter: AuditFilter): string[] {
  return (['actor', 'key', 'operation', 'outcome'] as const).filter((name) => filter[name] !== undefined);
}

function toRecord(row: Row): AuditRecordView {
  return {
    sequence: Number(row.sequence),
    time: (row.time as Date).toISOString(),
    plane: row.plane as AuditRecordView['plane'],
    actor: (row.actor as string | null) ?? null,
    operation: row.operation as string,
    keyName: (row.key_name as string | null) ?? null,
    keyVersion: row.key_version === null ? null : Number(row.key_version),
    outcome: row.outcome as AuditRecordView['outcome'],
    errorCode: (row.error_code as string | null) ?? null,
    requestId: (row.request_id as string | null) ?? null,
    sourceAddress: (row.source_address as string | null) ?? null,
    contextHmac: (row.context_hmac as string | null) ?? null,
    prevHash: row.prev_hash as string,
    hash: row.hash as string,
  };
}

function toCheckpoint(row: Row): AuditCheckpointView {
  return {
    sequence: Number(row.sequence),
    headHash: row.head_hash as string,
    time: (row.time as Date).toISOString(),
    keyFingerprint: row.key_fingerprint as string,
    signature: row.signature as string,
  };
}
