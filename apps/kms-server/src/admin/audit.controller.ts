import { Body, Controller, Get, Header, HttpCode, Inject, Post, Query, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import {
  ApiError,
  type AuditCheckpointView,
  type AuditCheckpointsView,
  type AuditFilter,
  type AuditPageView,
  type AuditPublicKeyView,
  type AuditCheckpointsQuery,
  type AuditPruneRequest,
  type AuditRetentionPolicyRequest,
  type AuditRetentionView,
  type AuditQuery,
  DEFAULT_CHECKPOINTS_LISTED,
  auditCheckpointsQuerySchema,
  auditFilterSchema,
  auditPruneRequestSchema,
  auditRetentionPolicyRequestSchema,
  auditQuerySchema,
} from '@keyhold/contracts';
import { publicKeyFingerprint } from '@keyhold/crypto-core';
import { ZodPipe } from '../common/zod-body.pipe';
import { type AuditCheckpointer, CheckpointRefusedError } from '../audit/audit-checkpointer';
import type { AuditExporter } from '../audit/audit-export';
import type { AuditKeys } from '../audit/audit-keys';
import type { AuditPruner } from '../audit/audit-pruner';
import type { AuditQueries } from '../audit/audit-queries';
import type { AuditScope } from '../audit/audit-scope';
import { RequestAuditScope } from '../audit/audit.decorator';
import { Roles } from './admin-auth.guards';
import type { AuthenticatedAdmin } from './admin-sessions';
import { ApprovalsService } from './approvals.service';

export const AUDIT_SERVICES = Symbol('AUDIT_SERVICES');
export interface AuditServices {
  queries: AuditQueries;
  keys: AuditKeys;
  checkpointer: AuditCheckpointer;
  exporter: AuditExporter;
  /** Null with the audit trail off. */
  pruner: AuditPruner | null;
}

const DEFAULT_PAGE = 100;
type WithUser = FastifyRequest & { user: AuthenticatedAdmin };

/**
 * The audit trail for auditors and admins: query with filters and cursor paging, export as JSON Lines, checkpoints,
 * the public key; and retention, a sensitive operation for admins.
 */
@Controller('api/v1/audit')
export class AuditController {
  constructor(
    @Inject(AUDIT_SERVICES) private readonly audit: AuditServices,
    private readonly approvals: ApprovalsService,
  ) {}

  @Get('records')
  @Roles('admin', 'auditor')
  async records(@Query(new ZodPipe(auditQuerySchema, 'query string')) query: AuditQuery): Promise<AuditPageView> {
    const { limit = DEFAULT_PAGE, cursor, ...filter } = query;
    const page = await this.audit.queries.records(filter, limit + 1, cursor ? Number(cursor) : 0);
    const shown = page.slice(0, limit);
    return { records: shown, nextCursor: page.length > limit ? String(shown[shown.length - 1].sequence) : null };
  }

  /** JSON Lines (docs/audit.md); one export is built at a time per instance (429 otherwise). */
  @Get('export')
  @Roles('admin', 'auditor')
  @Header('content-type', 'application/x-ndjson; charset=utf-8')
  @Header('content-disposition', 'attachment; filename="keyhold-audit.jsonl"')
  export(@Query(new ZodPipe(auditFilterSchema, 'query string')) filter: AuditFilter): Promise<string> {
    return this.audit.exporter.export(filter);
  }

  @Get('checkpoints')
  @Roles('admin', 'auditor')
  async checkpoints(@Query(new ZodPipe(auditCheckpointsQuerySchema, 'query string')) query: AuditCheckpointsQuery): Promise<AuditCheckpointsView> {
    return {
      checkpoints: await this.audit.queries.latestCheckpoints(query.limit ?? DEFAULT_CHECKPOINTS_LISTED),
      head: await this.audit.queries.head(),
      signing: this.audit.checkpointer.signingStatus(),
      prune: await this.audit.queries.latestPrune(),
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

  @Get('retention')
  @Roles('admin', 'auditor')
  retention(): Promise<AuditRetentionView> {
    if (!this.audit.pruner) throw new ApiError('INVALID_STATE', 'the audit trail is off on this server');
    return this.audit.pruner.retention();
  }

  /**
   * Requests `prune-audit-records`: once approved, the records through a signed checkpoint older than the minimum
   * retention are re-verified and removed (docs/audit.md, retention).
   */
  @Post('prune')
  @Roles('admin')
  prune(@Req() request: WithUser, @Body(new ZodPipe(auditPruneRequestSchema)) body: AuditPruneRequest, @RequestAuditScope() audit?: AuditScope) {
    return this.approvals.request(request.user.admin, { kind: 'prune-audit-records', throughSequence: body.throughSequence }, audit, 'audit.prune-request');
  }

  /** Requests `set-audit-retention`: once approved, Keyhold prunes records older than `days` by itself (null: stops). */
  @Post('retention-policy')
  @Roles('admin')
  setRetentionPolicy(
    @Req() request: WithUser,
    @Body(new ZodPipe(auditRetentionPolicyRequestSchema)) body: AuditRetentionPolicyRequest,
    @RequestAuditScope() audit?: AuditScope,
  ) {
    return this.approvals.request(request.user.admin, { kind: 'set-audit-retention', days: body.days }, audit, 'audit.retention-policy-request');
  }

  @Get('public-key')
  @Roles('admin', 'auditor')
  async publicKey(): Promise<AuditPublicKeyView> {
    const publicKeyPem = await this.audit.keys.publicKeyPem();
    if (!publicKeyPem) throw new ApiError('INVALID_STATE', 'no audit key yet: it is created at the first unsealed start');
    return { publicKeyPem, fingerprint: publicKeyFingerprint(publicKeyPem) };
  }
}
