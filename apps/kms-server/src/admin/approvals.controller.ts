import { Body, Controller, Get, HttpCode, Param, Post, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { approvalRequestSchema, sensitiveOperationSchema } from '@keyhold/contracts';
import type { z } from 'zod';
import { ZodPipe } from '../common/zod-body.pipe';
import type { AuditScope } from '../audit/audit-scope';
import { RequestAuditScope } from '../audit/audit.decorator';
import { Roles } from './admin-auth.guards';
import type { AuthenticatedAdmin } from './admin-sessions';
import { ApprovalsService, type SensitiveOperation } from './approvals.service';

type WithUser = FastifyRequest & { user: AuthenticatedAdmin };

/**
 * Pending sensitive operations, their approvals (each a passkey assertion over the operation), rejection, and the
 * closing of a run a crash cut short.
 */
@Controller('api/v1/operations')
export class ApprovalsController {
  constructor(private readonly approvals: ApprovalsService) {}

  @Get()
  @Roles('admin', 'operator', 'auditor')
  async list() {
    return { operations: await this.approvals.list(), quorum: await this.approvals.quorum() };
  }

  @Post()
  @Roles('admin')
  request(@Req() request: WithUser, @Body(new ZodPipe(sensitiveOperationSchema)) body: SensitiveOperation, @RequestAuditScope() audit?: AuditScope) {
    return this.approvals.request(request.user.admin, body, audit);
  }

  @Get(':id')
  @Roles('admin', 'operator', 'auditor')
  async get(@Param('id') id: string) {
    const operation = await this.approvals.get(id);
    return { operation, assertionOptions: await this.approvals.assertionOptions(operation.challenge) };
  }

  @Post(':id/approvals')
  @HttpCode(200)
  @Roles('admin')
  approve(
    @Req() request: WithUser,
    @Param('id') id: string,
    @Body(new ZodPipe(approvalRequestSchema)) body: z.output<typeof approvalRequestSchema>,
    @RequestAuditScope() audit: AuditScope | undefined,
  ) {
    return this.approvals.approve(request.user.admin, id, body.response, audit);
  }

  @Post(':id/reject')
  @HttpCode(200)
  @Roles('admin')
  reject(@Req() request: WithUser, @Param('id') id: string, @RequestAuditScope() audit?: AuditScope) {
    return this.approvals.reject(request.user.admin, id, audit);
  }

  /** Closes an operation left `executing` by a crash, once past the grace period: it never runs again. */
  @Post(':id/mark-interrupted')
  @HttpCode(200)
  @Roles('admin')
  markInterrupted(@Req() request: WithUser, @Param('id') id: string, @RequestAuditScope() audit?: AuditScope) {
    return this.approvals.markInterrupted(request.user.admin, id, audit);
  }
}
