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
   * rather than the ORM: three round trips per batch, none of TypeORM's per-query work on the hot path.
   */
  databaseUrl: string;
}

type Query = (sql: string, parameters?: unknown[]) => Promise<Array<Record<string, unknown>>>;

/** A statement of its own would hold the chain lock for longer; a database that stops answering fails closed. */
const AUDIT_STATEMENT_TIMEOUT_MS = 10_000;

export const DEFAULT_GROUP_COMMIT: GroupCommitOptions = { maxDelayMs: 2, maxBatch: 1000 };

/**
 * The one way records enter the chain. `append` queues for a group commit (the hot path: one multi-row INSERT
 * for everything queued in a few milliseconds); `appendInTransaction` writes inside the caller's transaction,
 * so a state change and its record commit together or not at all. Both take the chain head's row lock
 * (`keyhold_audit_chain_head`, id 1) first: that lock is what keeps one chain with several instances.
 */
export class AuditTrail {
  private readonly logger = new Logger('AuditTrail');
  private readonly committer: GroupCommitter<AuditEntry[], number[]>;
  private readonly listeners: Array<(head: number) => void> = [];
  private readonly pool: pg.Pool;

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
      return (await this.writeChained((sql, parameters) => manager.query(sql, parameters), entries)).map((record) => record.sequence);
    } catch (error) {
      this.logger.error({ msg: 'audit record not written: the change is rolled back', err: (error as Error).message });
      throw new AuditUnavailableError();
    }
  }

  /** Called with the new head sequence after each commit of this instance (checkpoints count from it). */
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

  private async commitGroups(groups: AuditEntry[][]): Promise<number[][]> {
    const records = await this.inOwnTransaction((query) => this.writeChained(query, groups.flat()));
    let offset = 0;
    return groups.map((group) => {
      const sequences = records.slice(offset, offset + group.length).map((record) => record.sequence);
      offset += group.length;
      return sequences;
    });
  }

  private async inOwnTransaction<T>(work: (query: Query) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work(async (sql, parameters) => (await client.query(sql, parameters)).rows);
      await client.query('COMMIT');
      client.release();
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release(error as Error); // a connection in an unknown state is not reused
      throw error;
    }
  }

  /** Takes the chain lock, places the entries after the head, and writes them and the new head in one statement. */
  private async writeChained(query: Query, entries: AuditEntry[]): Promise<AuditRecord[]> {
    const [head] = await query(`SELECT sequence::text AS sequence, hash FROM keyhold_audit_chain_head WHERE id = 1 FOR UPDATE`);
    if (!head) throw new Error('the audit chain head row is missing');
    const records = chainRecords(Number(head.sequence), head.hash as string, entries);
    const column = <K extends keyof AuditRecord>(key: K) => records.map((record) => record[key]);
    const last = records[records.length - 1];
    // One INSERT for the whole batch, whatever its size (arrays in, rows out), and the head moved in the same statement.
    await query(
      `WITH inserted AS (
         INSERT INTO keyhold_audit_records
           (sequence, time, plane, actor, operation, key_name, key_version, outcome, error_code, request_id, source_address, context_hmac, prev_hash, hash)
         SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::text[],
                              $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[])
         RETURNING 1)
       UPDATE keyhold_audit_chain_head SET sequence = $15, hash = $16 WHERE id = 1`,
      [
        column('sequence'),
        column('time'),
        column('plane'),
        column('actor'),
        column('operation'),
        column('keyName'),
        column('keyVersion'),
        column('outcome'),
        column('errorCode'),
        column('requestId'),
        column('sourceAddress'),
        column('contextHmac'),
        column('prevHash'),
        column('hash'),
        last.sequence,
        last.hash,
      ],
    );
    for (const listener of this.listeners) listener(last.sequence);
    return records;
  }
}
