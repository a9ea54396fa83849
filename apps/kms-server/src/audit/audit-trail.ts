import { Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { ApiError } from '@keyhold/contracts';
import type { AuditEntry } from '@keyhold/crypto-core';
import { AuditWriterThread } from './audit-writer';
import { AUDIT_STATEMENT_TIMEOUT_MS, appendLocked } from './chain-appender';
import type { GroupCommitOptions } from './group-committer';

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
  /** Group commits go through a connection of their own, opened by the audit writer thread. */
  databaseUrl: string;
}

export const DEFAULT_GROUP_COMMIT: GroupCommitOptions = { maxDelayMs: 0, maxBatch: 1000 };

/**
 * The one way records enter the chain. `append` queues for a group commit (the hot path: one multi-row INSERT
 * for everything queued meanwhile, written by the audit writer thread); `appendInTransaction` writes inside the
 * caller's transaction, so a state change and its record commit together or not at all. Every append moves
 * the chain head row (`keyhold_audit_chain_head`, id 1) under its row lock: that lock keeps one chain with
 * several instances.
 */
export class AuditTrail {
  private readonly logger = new Logger('AuditTrail');
  private readonly writer: AuditWriterThread;
  private readonly listeners: Array<(head: number) => void> = [];

  constructor(private readonly options: AuditTrailOptions) {
    this.writer = new AuditWriterThread(
      { databaseUrl: options.databaseUrl, groupCommit: options.groupCommit },
      { appended: (head) => this.notify(head), trouble: (message) => this.logger.warn({ msg: message }) },
    );
  }

  get enabled(): boolean {
    return this.options.enabled;
  }

  /** Group-committed batches so far (tests compare it with the number of records). */
  get batchesWritten(): number {
    return this.writer.batches;
  }

  /** Appends records of one request together (contiguous sequences); resolves once they are committed. */
  async append(entries: AuditEntry[]): Promise<number[]> {
    if (!this.options.enabled || entries.length === 0) return [];
    try {
      return await this.writer.append(entries);
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
      const records = await appendLocked((sql, parameters) => manager.query(sql, parameters), entries);
      this.writer.forgetHead(); // moved in another transaction: the next group commit takes the locking way
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
    return this.writer.drain();
  }

  /** Drains the queue and ends the writer thread and its connection. */
  close(): Promise<void> {
    return this.writer.close();
  }

  private notify(head: number): void {
    for (const listener of this.listeners) listener(head);
  }
}
