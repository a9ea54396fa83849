import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { type AdminView, type OpenInvitationListView, changeRoleRequestSchema, invitationParamsSchema, inviteRequestSchema } from '@keyhold/contracts';
import type { z } from 'zod';
import { ZodPipe } from '../common/zod-body.pipe';
import type { AuditScope } from '../audit/audit-scope';
import { RequestAuditScope } from '../audit/audit.decorator';
import { AdminRepository } from './admin.repository';
import { AdminAuthService } from './admin-auth.service';
import { Roles } from './admin-auth.guards';
import type { AuthenticatedAdmin } from './admin-sessions';
import { toAdminView } from './admin-views';

type WithUser = FastifyRequest & { user: AuthenticatedAdmin };

/** The origin admins use (https://host:8444), for the links Keyhold hands out. */
export const ADMIN_PUBLIC_ORIGIN = Symbol('ADMIN_PUBLIC_ORIGIN');

/** Administrators: list, invite with a role, change roles. Removing one goes through approvals. */
@Controller('api/v1/admins')
export class AdminsController {
  constructor(
    private readonly repository: AdminRepository,
    private readonly auth: AdminAuthService,
    @Inject(ADMIN_PUBLIC_ORIGIN) private readonly publicOrigin: string,
  ) {}

  @Get()
  @Roles('admin', 'operator', 'auditor')
  async list(): Promise<{ admins: AdminView[] }> {
    return { admins: (await this.repository.listAdmins()).map(toAdminView) };
  }

  @Post('invitations')
  @Roles('admin')
  async invite(
    @Req() request: WithUser,
    @Body(new ZodPipe(inviteRequestSchema)) body: z.output<typeof inviteRequestSchema>,
    @RequestAuditScope() audit?: AuditScope,
  ) {
    const { token, expiresAt } = await this.auth.invite(request.user.admin, body.role, body.name ?? null, audit);
    return { token, link: `${this.publicOrigin}/enrol#token=${token}`, role: body.role, expiresAt: expiresAt.toISOString() };
  }

  /**
   * Admins only, unlike the list of administrators: an open invitation is an account waiting for whoever holds
   * its link, and only admins can act on one (invite, revoke). Who was invited as what is recorded in the audit
   * log (`admins.invite`), which auditors read.
   */
  @Get('invitations')
  @Roles('admin')
  async invitations(): Promise<OpenInvitationListView> {
    return { invitations: await this.auth.openInvitations() };
  }

  /** Revokes an invitation nobody used yet: its link stops working now. */
  @Delete('invitations/:id')
  @Roles('admin')
  @HttpCode(204)
  async revokeInvitation(
    @Param(new ZodPipe(invitationParamsSchema, 'path')) params: z.output<typeof invitationParamsSchema>,
    @RequestAuditScope() audit?: AuditScope,
  ): Promise<void> {
    await this.auth.revokeInvitation(params.id, audit);
  }

  @Patch(':id')
  @Roles('admin')
  async changeRole(
    @Param('id') id: string,
    @Body(new ZodPipe(changeRoleRequestSchema)) body: z.output<typeof changeRoleRequestSchema>,
    @RequestAuditScope() audit?: AuditScope,
  ): Promise<AdminView> {
    return toAdminView(await this.auth.changeRole(id, body.role, audit));
  }
}
