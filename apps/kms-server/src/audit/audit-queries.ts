import type { EntityManager } from 'typeorm';
import {
  AUDIT_CHAIN_HEAD,
  AUDIT_CHECKPOINTS_IN_RANGE,
  AUDIT_LATEST_PRUNE,
  type AuditCheckpointView,
  type AuditFilter,
  type AuditPruneView,
  type AuditRecordView,
  auditCheckpointFromRow,
  auditPruneFromRow,
  auditRecordFromRow,
  auditRecordPagesByCursor,
  auditRecordsQuery,
} from '@keyhold/contracts';

/** Reads of the audit trail for the admin API: filtered, in sequence order, paged by sequence. */
export class AuditQueries {
  /** The data source's manager, or a transaction's (snapshot). */
  constructor(private readonly manager: EntityManager) {}

  /**
   * Runs `read` with queries that all see one snapshot (a read-only REPEATABLE READ transaction): an export's
   * records, checkpoints and head then agree, whatever is appended meanwhile.
   */
  snapshot<T>(read: (queries: AuditQueries) => Promise<T>): Promise<T> {
    return this.manager.transaction('REPEATABLE READ', async (manager) => {
      await manager.query('SET TRANSACTION READ ONLY');
      return read(new AuditQueries(manager));
    });
  }

  async records(filter: AuditFilter, limit: number, afterSequence = 0): Promise<AuditRecordView[]> {
    const query = auditRecordsQuery(filter, afterSequence, limit);
    const rows: Array<Record<string, unknown>> = await this.manager.query(query.text, query.values);
    return rows.map(auditRecordFromRow);
  }

  /** Every record matching `filter`, in sequence order, `pageSize` at a time through one cursor: only within `snapshot`. */
  recordPages(filter: AuditFilter, pageSize: number): AsyncGenerator<AuditRecordView[]> {
    return auditRecordPagesByCursor((sql, values) => this.manager.query(sql, values), filter, pageSize);
  }

  async checkpoints(fromSequence: number, toSequence: number): Promise<AuditCheckpointView[]> {
    const rows: Array<Record<string, unknown>> = await this.manager.query(AUDIT_CHECKPOINTS_IN_RANGE, [fromSequence, toSequence]);
    return rows.map(auditCheckpointFromRow);
  }

  /** The latest `limit` checkpoints, oldest first: a list that grows by the day is never read whole. */
  async latestCheckpoints(limit: number): Promise<AuditCheckpointView[]> {
    const rows: Array<Record<string, unknown>> = await this.manager.query(`SELECT * FROM keyhold_audit_checkpoints ORDER BY sequence DESC LIMIT $1`, [limit]);
    return rows.map(auditCheckpointFromRow).reverse();
  }

  /** The latest prune (null: the chain still starts at record 1). */
  async latestPrune(): Promise<AuditPruneView | null> {
    const [row] = await this.manager.query(AUDIT_LATEST_PRUNE);
    return row ? auditPruneFromRow(row) : null;
  }

  async head(): Promise<{ sequence: number; hash: string }> {
    const [row] = await this.manager.query(AUDIT_CHAIN_HEAD);
    return { sequence: Number(row.sequence), hash: row.hash as string };
  }
}
