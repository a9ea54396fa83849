import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import {
  ApiError,
  type Grant,
  grantSchema,
  issueCertificateRequestSchema,
  revokeCertificateRequestSchema,
} from '@keyhold/contracts';
import { randomUuid } from '@keyhold/crypto-core';
import type { z } from 'zod';
import { ZodPipe } from '../common/zod-body.pipe';
import { type AuditScope, recordIn } from '../audit/audit-scope';
import { RequestAuditScope } from '../audit/audit.decorator';
import { CertificateAuthorityService } from '../service-identities/certificate-authority.service';
import { DatabaseGrantPolicySource } from '../service-identities/database-grant-policy-source';
import { GrantsRepository } from '../service-identities/grants.repository';
import { Roles } from './admin-auth.guards';
import type { AuthenticatedAdmin } from './admin-sessions';

type WithUser = FastifyRequest & { user: AuthenticatedAdmin };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SERIAL = /^[0-9A-Fa-f]{2,64}$/;
export const DEFAULT_CERTIFICATE_VALIDITY_HOURS = 24;

/** Service identities: who may do what with which keys (grants), and the client certificates Keyhold issues. */
@Controller('api/v1')
export class ServiceIdentitiesController {
  constructor(
    private readonly grants: GrantsRepository,
    private readonly grantPolicy: DatabaseGrantPolicySource,
    private readonly authority: CertificateAuthorityService,
  ) {}

  @Get('grants')
  @Roles('admin', 'operator', 'auditor')
  async listGrants() {
    return { grants: await this.grants.list() };
  }

  @Post('grants')
  @Roles('admin')
  async createGrant(@Req() request: WithUser, @Body(new ZodPipe(grantSchema)) body: Grant, @RequestAuditScope() audit?: AuditScope) {
    const id = randomUuid();
    await this.grants.insert(id, body, request.user.admin.id, new Date(), recordIn(audit, { operation: 'grants.create', keyName: null, keyVersion: null }));
    await this.grantPolicy.reload();
    return this.grants.find(id);
  }

  @Patch('grants/:id')
  @Roles('admin')
  async updateGrant(@Param('id') id: string, @Body(new ZodPipe(grantSchema)) body: Grant, @RequestAuditScope() audit?: AuditScope) {
    const record = recordIn(audit, { operation: 'grants.update', keyName: null, keyVersion: null });
    if (!UUID.test(id) || !(await this.grants.update(id, body, new Date(), record))) throw new ApiError('NOT_FOUND', 'no such grant');
    await this.grantPolicy.reload();
    return this.grants.find(id);
  }

  @Delete('grants/:id')
  @HttpCode(204)
  @Roles('admin')
  async deleteGrant(@Param('id') id: string, @RequestAuditScope() audit?: AuditScope): Promise<void> {
    const record = recordIn(audit, { operation: 'grants.delete', keyName: null, keyVersion: null });
    if (!UUID.test(id) || !(await this.grants.delete(id, record))) throw new ApiError('NOT_FOUND', 'no such grant');
    await this.grantPolicy.reload();
  }

  @Get('ca')
  @Roles('admin', 'operator', 'auditor')
  async certificateAuthority() {
    return { certificatePem: await this.authority.ensure() };
  }

  @Get('certificates')
  @Roles('admin', 'operator', 'auditor')
  async listCertificates(@Query('identity') identity?: string) {
    return { certificates: await this.authority.list(typeof identity === 'string' ? identity : undefined) };
  }

  /** Issues a client certificate; a generated private key is in this answer only, never stored. */
  @Post('certificates')
  @Roles('admin')
  issue(
    @Req() request: WithUser,
    @Body(new ZodPipe(issueCertificateRequestSchema)) body: z.output<typeof issueCertificateRequestSchema>,
    @RequestAuditScope() audit?: AuditScope,
  ) {
    return this.authority.issue(
      {
        identity: body.identity,
        validityHours: body.validityHours ?? DEFAULT_CERTIFICATE_VALIDITY_HOURS,
        requestPem: body.csr,
        issuedBy: request.user.admin.id,
      },
      recordIn(audit, { operation: 'certificates.issue', keyName: null, keyVersion: null }),
    );
  }

  @Post('certificates/:serial/revoke')
  @HttpCode(200)
  @Roles('admin')
  revoke(
    @Req() request: WithUser,
    @Param('serial') serial: string,
    @Body(new ZodPipe(revokeCertificateRequestSchema.optional().transform((body) => body ?? {}))) body: { reason?: string },
    @RequestAuditScope() audit?: AuditScope,
  ) {
    if (!SERIAL.test(serial)) throw new ApiError('NOT_FOUND', 'no certificate with that serial number');
    return this.authority.revoke(serial, request.user.admin.id, body.reason ?? null, recordIn(audit, { operation: 'certificates.revoke', keyName: null, keyVersion: null }));
  }
}
