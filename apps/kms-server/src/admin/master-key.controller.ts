import { Controller, Get, Inject, Param, Post, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { type MasterKeyStatusView, versionParamSchema } from '@keyhold/contracts';
import { ZodPipe } from '../common/zod-body.pipe';
import type { AuditScope } from '../audit/audit-scope';
import { RequestAuditScope } from '../audit/audit.decorator';
import { MasterKeyService } from '../master-key/master-key.service';
import { Roles } from './admin-auth.guards';
import type { AuthenticatedAdmin } from './admin-sessions';
import { ApprovalsService } from './approvals.service';

type WithUser = FastifyRequest & { user: AuthenticatedAdmin };
const versionPipe = new ZodPipe(versionParamSchema, 'version');

/**
 * Master-key versions: status (versions, rows left to rewrap per target), rotation and retirement. Both changes
 * are sensitive operations: they open a pending operation that runs once approved with passkey assertions
 * (the requester's, and the quorum's).
 */
@Controller('api/v1/master-key')
export class MasterKeyController {
  constructor(
    @Inject(MasterKeyService) private readonly masterKeys: MasterKeyService,
    private readonly approvals: ApprovalsService,
  ) {}

  @Get()
  @Roles('admin', 'operator', 'auditor')
  status(): Promise<MasterKeyStatusView> {
    return this.masterKeys.status();
  }

  @Post('rotate')
  @Roles('admin')
  rotate(@Req() request: WithUser, @RequestAuditScope() audit?: AuditScope) {
    return this.approvals.request(request.user.admin, { kind: 'rotate-master-key' }, audit, 'master-key.rotate-request');
  }

  @Post('versions/:version/retire')
  @Roles('admin')
  retire(@Req() request: WithUser, @Param('version', versionPipe) version: number, @RequestAuditScope() audit?: AuditScope) {
    return this.approvals.request(request.user.admin, { kind: 'retire-master-key-version', version }, audit, 'master-key.retire-request');
  }
}
