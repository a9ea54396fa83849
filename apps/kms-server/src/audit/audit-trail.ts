import { Logger } from '@nestjs/common';
import pg from 'pg';
import type { EntityManager } from 'typeorm';
import { ApiError } from '@keyhold/contracts';
import { type AuditEntry, type AuditRecord, chainRecords } from '@keyhold/crypto-core';
import { type GroupCommitOptions, GroupCommitter } from './group-committer';

/** 503 UNAVAILABLE: the record of this request could not be written, so the request does not succeed. */
export class AuditUnavailableError extends ApiError {
  constructor() {
    super('UNAVAILABLE', 'the audit record of this request could not be written, so it was not done (audit fails closed); try again shortly');
    this.name = 'AuditUnavailableError';
  }
}

export interface AuditTrailOptions {
  /** Off only in development (KEYHOLD_AUDIT=off, for the benchmark's comparison); production refuses it. */
  enabled: boolean;
  groupCommit: GroupCommitOptions;
  /**
   * Group commits go through a connection of their own (one batch is in flight at a time), with plain `pg`
   * rather than the ORM: one statement per batch in the common case, none of TypeORM's per-query work.
   */
  databaseUrl: string;
}

export const DEFAULT_GROUP_COMMIT: GroupCommitOptions = { maxDelayMs: 0, maxBatch: 1000 };

type Query = (sql: string, parameters?: unknown[]) => Promise<Array<Record<string, unknown>>>;

/** A statement must not hold the chain lock for long; a database that stops answering fails closed. */
const AUDIT_STATEMENT_TIMEOUT_MS = 10_000;

const RECORD_COLUMNS =
  'sequence, time, plane, actor, operation, key_name, key_version, outcome, error_code, request_id, source_address, context_hmac, prev_hash, hash';
/** One array parameter per column: one INSERT for a whole batch, whatever its size. */
const RECORD_ARRAYS =
  '$1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[]';
const RECORD_KEYS: Array<keyof AuditRecord> = [
  'sequence', 'time', 'plane', 'actor', 'operation', 'keyName', 'keyVersion', 'outcome', 'errorCode', 'requestId', 'sourceAddress', 'contextHmac', 'prevHash', 'hash',
];

function recordColumns(records: readonly AuditRecord[]): unknown[][] {
  return RECORD_KEYS.map((key) => records.map((record) => record[key]));
}

/** Moves the head from ($17, $18) to ($15, $16) and inserts the records, or does nothing if the head moved. */
const OPTIMISTIC_APPEND = `WITH moved AS (
    UPDATE keyhold_audit_chain_head SET sequence = $15, hash = $16 WHERE id = 1 AND sequence = $17 AND hash = $18 RETURNING 1),
  inserted AS (
    INSERT INTO keyhold_audit_records (${RECORD_COLUMNS})
    SELECT * FROM unnest(${RECORD_ARRAYS}) WHERE EXISTS (SELECT 1 FROM moved) RETURNING 1)
  SELECT (SELECT count(*) FROM moved)::int AS moved`;

async function readHead(query: Query, lock: '' | 'FOR UPDATE' = ''): Promise<{ sequence: number; hash: string }> {
  const [head] = await query(`SELECT sequence::text AS sequence, hash FROM keyhold_audit_chain_head WHERE id = 1 ${lock}`);
  if (!head) throw new Error('the audit chain head row is missing');
  return { sequence: Number(head.sequence), hash: head.hash as string };
}

/**
 * The one way records enter the chain. `append` queues for a group commit (the hot path: one multi-row INSERT
 * for everything queued in a few milliseconds); `appendInTransaction` writes inside the caller's transaction,
 * so a state change and its record commit together or not at all. Every append moves the chain head row
 * (`keyhold_audit_chain_head`, id 1) under its row lock: that lock keeps one chain with several instances.
 */
export class AuditTrail {
  private readonly logger = new Logger('AuditTrail');
  private readonly committer: GroupCommitter<AuditEntry[], number[]>;
  private readonly listeners: Array<(head: number) => void> = [];
  private readonly pool: pg.Pool;
  /** The head this instance's last group commit left; null: read it first. */
  private knownHead: { sequence: number; hash: string } | null = null;

  constructor(private readonly options: AuditTrailOptions) {
    this.committer = new GroupCommitter((groups) => this.commitGroups(groups), options.groupCommit);
    this.pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: 1,
      connectionTimeoutMillis: 5000,
      statement_timeout: AUDIT_STATEMENT_TIMEOUT_MS,
      application_name: 'keyhold-audit',
    });
    // An idle connection dropped by the server is replaced at the next checkout; do not crash on it.
    this.pool.on('error', (error) => this.logger.warn({ msg: 'audit connection lost; reconnecting on next use', err: error.message }));
  }

  get enabled(): boolean {
    return this.options.enabled;
  }

  /** Group-committed batches so far (tests compare it with the number of records). */
  get batchesWritten(): number {
    return this.committer.batches;
  }

  /** Appends records of one request together (contiguous sequences); resolves once they are committed. */
  async append(entries: AuditEntry[]): Promise<number[]> {
    if (!this.options.enabled || entries.length === 0) return [];
    try {
      return await this.committer.submit(entries);
    } catch (error) {
      this.logger.error({ msg: 'audit records not written: the request fails', err: (error as Error).message });
      throw new AuditUnavailableError();
    }
  }

  /** Appends inside the caller's transaction; call it last, just before commit, to hold the chain lock briefly. */
  async appendInTransaction(manager: EntityManager, entries: AuditEntry[]): Promise<number[]> {
    if (!this.options.enabled || entries.length === 0) return [];
    try {
      // Waiting on the chain lock longer than this is a bug (a transaction waiting on itself through another
      // connection, say): fail the change with 503 rather than hang it.
      await manager.query(`SET LOCAL lock_timeout = '${AUDIT_STATEMENT_TIMEOUT_MS}ms'`);
      const records = await this.writeLocked((sql, parameters) => manager.query(sql, parameters), entries);
      this.knownHead = null; // moved in another transaction: the next group commit takes the locking way
      this.notify(records[records.length - 1].sequence);
      return records.map((record) => record.sequence);
    } catch (error) {
      this.logger.error({ msg: 'audit record not written: the change is rolled back', err: (error as Error).message });
      throw new AuditUnavailableError();
    }
  }

  /** Called with the new head sequence after each append of this instance (checkpoints count from it). */
  onAppended(listener: (headSequence: number) => void): void {
    this.listeners.push(listener);
  }

  drain(): Promise<void> {
    return this.committer.drain();
  }

  /** Drains the queue and closes the group-commit connection. */
  async close(): Promise<void> {
    await this.drain();
    await this.pool.end();
  }

  private notify(head: number): void {
    for (const listener of this.listeners) listener(head);
  }

  private async commitGroups(groups: AuditEntry[][]): Promise<number[][]> {
    const records = await this.appendOptimistically(groups.flat());
    let offset = 0;
    return groups.map((group) => {
      const sequences = records.slice(offset, offset + group.length).map((record) => record.sequence);
      offset += group.length;
      return sequences;
    });
  }

  /**
   * The group commit's append in ONE statement (its own transaction): the records are chained after the head
   * this instance last wrote, and the statement moves the head only if it is still there, inserting the
   * records only then. If another instance (or a lifecycle change) moved the head first, nothing was inserted
   * and the batch is appended the locking way instead: read the head FOR UPDATE, chain, insert, commit. The
   * head row's lock serialises every append either way; the common case is spared a read and a transaction.
   */
  private async appendOptimistically(entries: AuditEntry[]): Promise<AuditRecord[]> {
    const client = await this.pool.connect();
    try {
      const query: Query = async (sql, parameters) => (await client.query(sql, parameters)).rows;
      let records: AuditRecord[] | null = null;
      if (this.knownHead) {
        const head = this.knownHead;
        const chained = chainRecords(head.sequence, head.hash, entries);
        const last = chained[chained.length - 1];
        // A named statement: parsed and planned once per connection, not once per batch.
        const { rows } = await client.query({
          name: 'keyhold-audit-append',
          text: OPTIMISTIC_APPEND,
          values: [...recordColumns(chained), last.sequence, last.hash, head.sequence, head.hash],
        });
        if (rows[0]?.moved === 1) records = chained;
      }
      if (!records) {
        await client.query('BEGIN');
        records = await this.writeLocked(query, entries);
        await client.query('COMMIT');
      }
      const last = records[records.length - 1];
      this.knownHead = { sequence: last.sequence, hash: last.hash };
      client.release();
      this.notify(last.sequence);
      return records;
    } catch (error) {
      this.knownHead = null;
      await client.query('ROLLBACK').catch(() => undefined);
      client.release(error as Error); // a connection in an unknown state is not reused
      throw error;
    }
  }

  /** Inside a transaction: takes the head's row lock, chains the entries after it, inserts them, moves the head. */
  private async writeLocked(query: Query, entries: AuditEntry[]): Promise<AuditRecord[]> {
    const head = await readHead(query, 'FOR UPDATE');
    const records = chainRecords(head.sequence, head.hash, entries);
    const last = records[records.length - 1];
    await query(
      `WITH inserted AS (INSERT INTO keyhold_audit_records (${RECORD_COLUMNS}) SELECT * FROM unnest(${RECORD_ARRAYS}) RETURNING 1)
       UPDATE keyhold_audit_chain_head SET sequence = $15, hash = $16 WHERE id = 1`,
      [...recordColumns(records), last.sequence, last.hash],
    );
    return records;
  }
}
