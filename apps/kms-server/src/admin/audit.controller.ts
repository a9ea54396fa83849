import { Controller, Get, Header, HttpCode, Inject, Post, Query } from '@nestjs/common';
import {
  ApiError,
  type AuditCheckpointView,
  type AuditCheckpointsView,
  type AuditExportLine,
  type AuditFilter,
  type AuditPageView,
  type AuditPublicKeyView,
  type AuditCheckpointsQuery,
  type AuditQuery,
  DEFAULT_CHECKPOINTS_LISTED,
  auditCheckpointsQuerySchema,
  auditExportCheckpointRange,
  auditFilterSchema,
  auditQuerySchema,
} from '@keyhold/contracts';
import { publicKeyFingerprint } from '@keyhold/crypto-core';
import { ZodPipe } from '../common/zod-body.pipe';
import { type AuditCheckpointer, CheckpointRefusedError } from '../audit/audit-checkpointer';
import type { AuditKeys } from '../audit/audit-keys';
import type { AuditQueries } from '../audit/audit-queries';
import { Roles } from './admin-auth.guards';

export const AUDIT_SERVICES = Symbol('AUDIT_SERVICES');
export interface AuditServices {
  queries: AuditQueries;
  keys: AuditKeys;
  checkpointer: AuditCheckpointer;
}

const DEFAULT_PAGE = 100;
const EXPORT_PAGE = 1000;
/** An export past this many records must be split by time or sequence range (kmsctl reads Postgres directly). */
export const MAX_EXPORT_RECORDS = 200_000;

/** The audit trail for auditors and admins: query with filters and cursor paging, export as JSON Lines, checkpoints, the public key. */
@Controller('api/v1/audit')
export class AuditController {
  constructor(@Inject(AUDIT_SERVICES) private readonly audit: AuditServices) {}

  @Get('records')
  @Roles('admin', 'auditor')
  async records(@Query(new ZodPipe(auditQuerySchema, 'query string')) query: AuditQuery): Promise<AuditPageView> {
    const { limit = DEFAULT_PAGE, cursor, ...filter } = query;
    const page = await this.audit.queries.records(filter, limit + 1, cursor ? Number(cursor) : 0);
    const shown = page.slice(0, limit);
    return { records: shown, nextCursor: page.length > limit ? String(shown[shown.length - 1].sequence) : null };
  }

  /**
   * JSON Lines: a header, the records in sequence order, then the checkpoints within their sequence range (and,
   * for an export that runs to the chain head, every later one: docs/audit.md).
   */
  @Get('export')
  @Roles('admin', 'auditor')
  @Header('content-type', 'application/x-ndjson; charset=utf-8')
  @Header('content-disposition', 'attachment; filename="keyhold-audit.jsonl"')
  async export(@Query(new ZodPipe(auditFilterSchema, 'query string')) filter: AuditFilter): Promise<string> {
    const publicKey = await this.audit.keys.publicKeyPem();
    const lines: AuditExportLine[] = [
      { type: 'header', format: 'keyhold-audit-export-v1', exportedAt: new Date().toISOString(), filters: filter, keyFingerprint: publicKey ? publicKeyFingerprint(publicKey) : null },
    ];
    // One snapshot: a checkpoint signed while the export runs must not come without its record.
    await this.audit.queries.snapshot(async (queries) => {
      let after = 0;
      let count = 0;
      let first: number | null = null;
      let last = 0;
      for (;;) {
        const page = await queries.records(filter, EXPORT_PAGE, after);
        for (const record of page) lines.push({ type: 'record', ...record });
        count += page.length;
        if (count > MAX_EXPORT_RECORDS) {
          throw new ApiError('VALIDATION_FAILED', `more than ${MAX_EXPORT_RECORDS} records match: narrow the time or sequence range`);
        }
        if (page.length > 0) {
          first ??= page[0].sequence;
          last = page[page.length - 1].sequence;
          after = last;
        }
        if (page.length < EXPORT_PAGE) break;
      }
      const range = auditExportCheckpointRange(filter, first, first === null ? null : last);
      if (range) for (const checkpoint of await queries.checkpoints(...range)) lines.push({ type: 'checkpoint', ...checkpoint });
    });
    return `${lines.map((line) => JSON.stringify(line)).join('\n')}\n`;
  }

  @Get('checkpoints')
  @Roles('admin', 'auditor')
  async checkpoints(@Query(new ZodPipe(auditCheckpointsQuerySchema, 'query string')) query: AuditCheckpointsQuery): Promise<AuditCheckpointsView> {
    return {
      checkpoints: await this.audit.queries.latestCheckpoints(query.limit ?? DEFAULT_CHECKPOINTS_LISTED),
      head: await this.audit.queries.head(),
      signing: this.audit.checkpointer.signingStatus(),
    };
  }

  /**
   * Signs a checkpoint of the current chain head now (besides the periodic ones); 409 INVALID_STATE when the chain
   * since the last checkpoint does not verify, and nothing is signed.
   */
  @Post('checkpoints')
  @HttpCode(200)
  @Roles('admin', 'auditor')
  async checkpoint(): Promise<{ checkpoint: AuditCheckpointView | null }> {
    try {
      return { checkpoint: await this.audit.checkpointer.checkpoint() };
    } catch (error) {
      if (error instanceof CheckpointRefusedError) throw new ApiError('INVALID_STATE', error.message);
      throw error;
    }
  }

  @Get('public-key')
  @Roles('admin', 'auditor')
  async publicKey(): Promise<AuditPublicKeyView> {
    const publicKeyPem = await this.audit.keys.publicKeyPem();
    if (!publicKeyPem) throw new ApiError('INVALID_STATE', 'no audit key yet: it is created at the first unsealed start');
    return { publicKeyPem, fingerprint: publicKeyFingerprint(publicKeyPem) };
  }
}
