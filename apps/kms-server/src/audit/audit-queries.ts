import type { DataSource } from 'typeorm';
import {
  AUDIT_CHAIN_HEAD,
  AUDIT_CHECKPOINTS_IN_RANGE,
  type AuditCheckpointView,
  type AuditFilter,
  type AuditRecordView,
  auditCheckpointFromRow,
  auditRecordFromRow,
  auditRecordsQuery,
} from '@keyhold/contracts';

/** Reads of the audit trail for the admin API: filtered, in sequence order, paged by sequence. */
export class AuditQueries {
  constructor(private readonly dataSource: Pick<DataSource, 'query'>) {}

  /**
   * Runs `read` with queries that all see one snapshot (a read-only REPEATABLE READ transaction): an export's
   * records, checkpoints and head then agree, whatever is appended meanwhile.
   */
  snapshot<T>(read: (queries: AuditQueries) => Promise<T>): Promise<T> {
    const dataSource = this.dataSource as DataSource;
    return dataSource.transaction('REPEATABLE READ', async (manager) => {
      await manager.query('SET TRANSACTION READ ONLY');
      return read(new AuditQueries(manager));
    });
  }

  async records(filter: AuditFilter, limit: number, afterSequence = 0): Promise<AuditRecordView[]> {
    const query = auditRecordsQuery(filter, afterSequence, limit);
    const rows: Array<Record<string, unknown>> = await this.dataSource.query(query.text, query.values);
    return rows.map(auditRecordFromRow);
  }

  async checkpoints(fromSequence: number, toSequence: number): Promise<AuditCheckpointView[]> {
    const rows: Array<Record<string, unknown>> = await this.dataSource.query(AUDIT_CHECKPOINTS_IN_RANGE, [fromSequence, toSequence]);
    return rows.map(auditCheckpointFromRow);
  }

  async head(): Promise<{ sequence: number; hash: string }> {
    const [row] = await this.dataSource.query(AUDIT_CHAIN_HEAD);
    return { sequence: Number(row.sequence), hash: row.hash as string };
  }
}
