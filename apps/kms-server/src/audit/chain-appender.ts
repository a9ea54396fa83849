import pg from 'pg';
import { type AuditEntry, type AuditRecord, chainRecordsAsRows } from '@keyhold/crypto-core';

/** A statement must not hold the chain lock for long; a database that stops answering fails closed. */
export const AUDIT_STATEMENT_TIMEOUT_MS = 10_000;

export type Query = (sql: string, parameters?: unknown[]) => Promise<Array<Record<string, unknown>>>;

const RECORD_COLUMNS =
  'sequence, time, plane, actor, operation, key_name, key_version, outcome, error_code, request_id, source_address, context_hmac, prev_hash, hash';
/**
 * A batch travels as ONE parameter: the JSON array of its rows, each a record's canonical encoding with its two
 * hashes appended (crypto-core's `chainRecordsAsRows`: the texts already hashed, so nothing is encoded twice), unpacked
 * by Postgres by position. jsonb: parsed once, then each field is a lookup (a `json` value is re-parsed for each).
 * Measured on an idle machine (2026-11-28): 20 % less of Postgres's CPU than named fields through json_to_recordset.
 */
const RECORDS_FROM_ROWS = `SELECT (r->>1)::bigint, (r->>2)::timestamptz, r->>3, r->>4, r->>5, r->>6, (r->>7)::int, r->>8, r->>9, r->>10,
    r->>11, r->>12, r->>13, r->>14
  FROM jsonb_array_elements($1::jsonb) AS batch(r)`;

/** Moves the head from ($4, $5) to ($2, $3) and inserts the records, or does nothing if the head moved. */
const OPTIMISTIC_APPEND = `WITH moved AS (
    UPDATE keyhold_audit_chain_head SET sequence = $2, hash = $3 WHERE id = 1 AND sequence = $4 AND hash = $5 RETURNING 1),
  inserted AS (
    INSERT INTO keyhold_audit_records (${RECORD_COLUMNS})
    ${RECORDS_FROM_ROWS} WHERE EXISTS (SELECT 1 FROM moved) RETURNING 1)
  SELECT (SELECT count(*) FROM moved)::int AS moved`;

interface ChainHead {
  sequence: number;
  hash: string;
}

/**
 * Inside a transaction: takes the head's row lock, chains the entries after it, inserts them and moves the
 * head. The one locking way into the chain, for group commits that lost the race and for state changes
 * recorded in their own transaction.
 */
export async function appendLocked(query: Query, entries: readonly AuditEntry[]): Promise<AuditRecord[]> {
  const [head] = await query('SELECT sequence::text AS sequence, hash FROM keyhold_audit_chain_head WHERE id = 1 FOR UPDATE');
  if (!head) throw new Error('the audit chain head row is missing');
  const { records, rows } = chainRecordsAsRows(Number(head.sequence), head.hash as string, entries);
  const last = records[records.length - 1];
  await query(
    `WITH inserted AS (INSERT INTO keyhold_audit_records (${RECORD_COLUMNS}) ${RECORDS_FROM_ROWS} RETURNING 1)
     UPDATE keyhold_audit_chain_head SET sequence = $2, hash = $3 WHERE id = 1`,
    [rows, last.sequence, last.hash],
  );
  return records;
}

/**
 * The group commit's way into the chain, over a connection of its own with plain `pg` (one statement per
 * batch in the common case, none of the ORM's per-query work). The records are chained after the head this
 * appender last wrote, and one statement moves the head only if it is still there, inserting the records only
 * then. If another instance (or a state change) moved the head first, nothing was inserted and the batch goes
 * the locking way instead. The head row's lock serialises every append either way; the common case is spared
 * a read and a transaction.
 */
export class ChainAppender {
  private readonly pool: pg.Pool;
  private closed: Promise<void> | null = null;
  /** The head this appender's last batch left; null: read it (locked) first. */
  private knownHead: ChainHead | null = null;

  constructor(databaseUrl: string, onConnectionLost: (error: Error) => void) {
    this.pool = new pg.Pool({
      connectionString: databaseUrl,
      max: 1,
      connectionTimeoutMillis: 5000,
      statement_timeout: AUDIT_STATEMENT_TIMEOUT_MS,
      // The server's statement timeout cannot end a wait on a connection that went half-open: this side gives up
      // too (the connection is then discarded), and keepalive finds such a connection out when it is idle.
      query_timeout: AUDIT_STATEMENT_TIMEOUT_MS + 5000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      application_name: 'keyhold-audit',
    });
    // An idle connection dropped by the server is replaced at the next checkout; do not crash on it.
    this.pool.on('error', onConnectionLost);
  }

  /** The head moved elsewhere (a record written in a transaction): the next batch takes the locking way. */
  forgetHead(): void {
    this.knownHead = null;
  }

  async append(entries: readonly AuditEntry[]): Promise<AuditRecord[]> {
    // Checked out per batch on purpose: the checkout waits for Node's tick queue, so a batch goes out after the
    // answers the last commit released, and each cycle is long enough for the next batch to gather. Kept checked
    // out, batches went smaller (more commits for Postgres) and throughput fell by a tenth at concurrency 16 and a
    // fifth at 64 (docs/audit.md).
    const client = await this.pool.connect();
    try {
      let records: AuditRecord[] | null = null;
      if (this.knownHead) {
        const head = this.knownHead;
        const chained = chainRecordsAsRows(head.sequence, head.hash, entries);
        const last = chained.records[chained.records.length - 1];
        // A named statement: parsed and planned once per connection, not once per batch.
        const { rows } = await client.query({
          name: 'keyhold-audit-append',
          text: OPTIMISTIC_APPEND,
          values: [chained.rows, last.sequence, last.hash, head.sequence, head.hash],
        });
        if (rows[0]?.moved === 1) records = chained.records;
      }
      if (!records) {
        await client.query('BEGIN');
        records = await appendLocked(async (sql, parameters) => (await client.query(sql, parameters)).rows, entries);
        await client.query('COMMIT');
      }
      const last = records[records.length - 1];
      this.knownHead = { sequence: last.sequence, hash: last.hash };
      client.release();
      return records;
    } catch (error) {
      this.knownHead = null;
      await client.query('ROLLBACK').catch(() => undefined);
      client.release(error as Error); // a connection in an unknown state is not reused
      throw error;
    }
  }

  /** Ends the connection; calling it again is harmless. */
  close(): Promise<void> {
    this.closed ??= this.pool.end();
    return this.closed;
  }
}
