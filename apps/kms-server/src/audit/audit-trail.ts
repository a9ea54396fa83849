import { Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { ApiError } from '@keyhold/contracts';
import type { AuditChainPoint, AuditEntry, AuditRecord } from '@keyhold/crypto-core';
import { AUDIT_STATEMENT_TIMEOUT_MS, ChainAppender, appendLocked } from './chain-appender';
import { type GroupCommitOptions, GroupCommitter, QueueFullError } from './group-committer';

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
  /** Group commits go through a connection of their own (see ChainAppender). */
  databaseUrl: string;
}

export const DEFAULT_GROUP_COMMIT: GroupCommitOptions = { maxDelayMs: 0, maxBatch: 1000 };

/**
 * The one way records enter the chain. `append` queues for a group commit (the hot path: one multi-row INSERT
 * for everything queued meanwhile); `appendInTransaction` writes inside the caller's transaction, so a state
 * change and its record commit together or not at all. Every append moves the chain head row
 * (`keyhold_audit_chain_head`, id 1) under its row lock: that lock keeps one chain with several instances.
 */
export class AuditTrail {
  private readonly logger = new Logger('AuditTrail');
  private readonly appender: ChainAppender;
  private readonly committer: GroupCommitter<AuditEntry[], number[]>;
  private readonly listeners: Array<(head: number, committed: AuditChainPoint | null) => void> = [];
  private readonly batchListeners: Array<(records: number, seconds: number) => void> = [];
  private failedBatches = 0;

  constructor(private readonly options: AuditTrailOptions) {
    this.appender = new ChainAppender(options.databaseUrl, (error) =>
      this.logger.warn({ msg: 'audit connection lost; reconnecting on next use', err: error.message }),
    );
    this.committer = new GroupCommitter((groups) => this.commitGroups(groups), options.groupCommit, (entries) => entries.length);
  }

  get enabled(): boolean {
    return this.options.enabled;
  }

  /** Group-committed batches so far (tests compare it with the number of records). */
  get batchesWritten(): number {
    return this.committer.batches;
  }

  /** Records waiting for their group commit. */
  get queuedRecords(): number {
    return this.committer.queued;
  }

  /** Group commits that failed (each failed every request in it). */
  get writeFailures(): number {
    return this.failedBatches;
  }

  /** Appends records of one request together (contiguous sequences); resolves once they are committed. */
  async append(entries: AuditEntry[]): Promise<number[]> {
    if (!this.options.enabled || entries.length === 0) return [];
    try {
      return await this.committer.submit(entries);
    } catch (error) {
      // A full queue refuses every request while the database lags: one line each would flood the log.
      if (!(error instanceof QueueFullError)) this.logger.error({ msg: 'audit records not written: the request fails', err: (error as Error).message });
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
      this.appender.forgetHead(); // moved in another transaction: the next group commit takes the locking way
      this.notify(records[records.length - 1].sequence, null); // not committed yet: the transaction may roll back
      return records.map((record) => record.sequence);
    } catch (error) {
      this.logger.error({ msg: 'audit record not written: the change is rolled back', err: (error as Error).message });
      throw new AuditUnavailableError();
    }
  }

  /**
   * Called with the new head sequence after each append of this instance (checkpoints count from it), and, for a
   * group commit, the last record it committed (sequence and hash): a point of the chain this instance wrote
   * itself, which the checkpointer checks the database against before signing.
   */
  onAppended(listener: (headSequence: number, committed: AuditChainPoint | null) => void): void {
    this.listeners.push(listener);
  }

  /** Called after each group commit with its records and how long it took to commit. */
  onBatchCommitted(listener: (records: number, seconds: number) => void): void {
    this.batchListeners.push(listener);
  }

  drain(): Promise<void> {
    return this.committer.drain();
  }

  /** Drains the queue and closes the group-commit connection. */
  async close(): Promise<void> {
    await this.committer.drain();
    await this.appender.close();
  }

  private notify(head: number, committed: AuditChainPoint | null): void {
    for (const listener of this.listeners) listener(head, committed);
  }

  /** One group commit: every request's entries in one batch; each request gets its own (contiguous) sequences. */
  private async commitGroups(groups: AuditEntry[][]): Promise<number[][]> {
    const started = performance.now();
    let records: AuditRecord[];
    try {
      records = await this.appender.append(groups.length === 1 ? groups[0] : groups.flat());
    } catch (error) {
      this.failedBatches += 1;
      throw error;
    }
    const seconds = (performance.now() - started) / 1000;
    for (const listener of this.batchListeners) listener(records.length, seconds);
    const last = records[records.length - 1];
    this.notify(last.sequence, { sequence: last.sequence, hash: last.hash });
    let offset = 0;
    return groups.map((group) => {
      const sequences = new Array<number>(group.length);
      for (let index = 0; index < group.length; index += 1) sequences[index] = records[offset + index].sequence;
      offset += group.length;
      return sequences;
    });
  }
}
