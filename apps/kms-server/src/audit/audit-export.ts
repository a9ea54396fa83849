import { ApiError, type AuditExportLine, type AuditFilter, auditExportCheckpointRange } from '@keyhold/contracts';
import { publicKeyFingerprint } from '@keyhold/crypto-core';
import { ConcurrencyGate } from '../common/concurrency-gate';
import type { AuditKeys } from './audit-keys';
import type { AuditQueries } from './audit-queries';

/** An export past this many records must be split by time or sequence range (kmsctl reads Postgres directly). */
export const MAX_EXPORT_RECORDS = 200_000;
const EXPORT_PAGE = 1000;
const jsonLine = (line: AuditExportLine): string => JSON.stringify(line);

/**
 * The audit trail as JSON Lines (docs/audit.md): a header, the latest prune when the records start right after it
 * (what their first link is checked against), the records in sequence order, then the checkpoints within their
 * sequence range (and, for an export that runs to the chain head, every later one).
 *
 * An export is built whole before anything is sent, so that a failure midway is an error answer rather than a
 * shorter file that still verifies. That costs memory (the text of MAX_EXPORT_RECORDS records is about 100 MB, twice
 * that while it is joined), so one export is built at a time per instance; another asked for meanwhile is refused
 * with 429 and a Retry-After.
 */
export class AuditExporter {
  private readonly gate = new ConcurrencyGate({
    limit: 1,
    maxWaiting: 0,
    retryAfterSeconds: 5,
    busy: 'another audit export is being built on this instance',
  });

  constructor(
    private readonly queries: AuditQueries,
    private readonly keys: AuditKeys,
    private readonly now: () => Date,
  ) {}

  export(filter: AuditFilter): Promise<string> {
    return this.gate.run(() => this.build(filter));
  }

  private async build(filter: AuditFilter): Promise<string> {
    const publicKey = await this.keys.publicKeyPem();
    const header = jsonLine({ type: 'header', format: 'keyhold-audit-export-v1', exportedAt: this.now().toISOString(), filters: filter, keyFingerprint: publicKey ? publicKeyFingerprint(publicKey) : null });
    // Each page is turned into its lines at once: text takes a fraction of the memory of the rows as objects.
    const chunks: string[] = [header];
    // One snapshot: a checkpoint signed while the export runs must not come without its record.
    await this.queries.snapshot(async (queries) => {
      let count = 0;
      let first: number | null = null;
      let last = 0;
      for await (const page of queries.recordPages(filter, EXPORT_PAGE)) {
        count += page.length;
        if (count > MAX_EXPORT_RECORDS) {
          throw new ApiError('VALIDATION_FAILED', `more than ${MAX_EXPORT_RECORDS} records match: narrow the time or sequence range`);
        }
        chunks.push(page.map((record) => jsonLine({ type: 'record', ...record })).join('\n'));
        first ??= page[0].sequence;
        last = page[page.length - 1].sequence;
      }
      const prune = await queries.latestPrune();
      if (prune && first === prune.throughSequence + 1) chunks.splice(1, 0, jsonLine({ type: 'prune', ...prune }));
      const range = auditExportCheckpointRange(filter, first, first === null ? null : last);
      const checkpoints = range ? await queries.checkpoints(...range) : [];
      if (checkpoints.length > 0) chunks.push(checkpoints.map((checkpoint) => jsonLine({ type: 'checkpoint', ...checkpoint })).join('\n'));
    });
    return `${chunks.join('\n')}\n`;
  }
}
