import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  type PasskeyView,
  type SessionView,
  addPasskeyOptionsRequestSchema,
  addPasskeyRequestSchema,
  enrolmentOptionsRequestSchema,
  enrolmentRequestSchema,
  recoveryRequestSchema,
  regenerateRecoveryCodesRequestSchema,
  removePasskeyRequestSchema,
  renamePasskeyRequestSchema,
  signInRequestSchema,
  stepUpOptionsRequestSchema,
} from '@keyhold/contracts';
import type { z } from 'zod';
import { ZodPipe } from '../common/zod-body.pipe';
import { type AuditScope, recordIn } from '../audit/audit-scope';
import { RequestAuditScope } from '../audit/audit.decorator';
import { AdminRepository } from './admin.repository';
import { AdminAuthService, type SignedAssertion } from './admin-auth.service';
import { PublicRoute, Roles, SignInRateLimitGuard, WebAuthnSignInGuard } from './admin-auth.guards';
import { type AuthenticatedAdmin, AdminSessions, SESSION_COOKIE } from './admin-sessions';
import { toAdminView, toPasskeyView } from './admin-views';

type Parsed<T extends z.ZodType> = z.output<T>;
type WithUser<T> = FastifyRequest & { user: T };

function sessionCookie(value: string, expiresAt: Date): string {
  return `${SESSION_COOKIE}=${value}; Path=/; Secure; HttpOnly; SameSite=Strict; Expires=${expiresAt.toUTCString()}`;
}
const CLEARED_COOKIE = `${SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0`;

function clientContext(request: FastifyRequest) {
  const agent = request.headers['user-agent'];
  return { sourceAddress: request.ip ?? null, userAgent: typeof agent === 'string' ? agent.slice(0, 256) : null };
}

/**
 * Enrolment (setup link, invitation, recovery), sign-in and sign-out, and one's own passkeys. Adding or removing a
 * passkey and replacing the recovery codes need a step-up (a fresh passkey assertion), not the session alone.
 */
@Controller('api/v1')
export class AdminAuthController {
  constructor(
    private readonly auth: AdminAuthService,
    private readonly sessions: AdminSessions,
    private readonly repository: AdminRepository,
  ) {}

  @Post('enrolment/options')
  @HttpCode(200)
  @PublicRoute()
  @UseGuards(SignInRateLimitGuard)
  enrolmentOptions(@Body(new ZodPipe(enrolmentOptionsRequestSchema)) body: Parsed<typeof enrolmentOptionsRequestSchema>) {
    return this.auth.enrolmentOptions(body.token, body.name);
  }

  @Post('enrolment')
  @PublicRoute()
  @UseGuards(SignInRateLimitGuard)
  async enrol(
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
    @Body(new ZodPipe(enrolmentRequestSchema)) body: Parsed<typeof enrolmentRequestSchema>,
    @RequestAuditScope() audit?: AuditScope,
  ) {
    const { admin, passkeyId, recoveryCodes } = await this.auth.completeEnrolment(body.token, body.response, body.passkeyName, audit);
    const session = await this.sessions.create(admin, passkeyId, clientContext(request));
    void reply.header('set-cookie', sessionCookie(session.cookie, session.expiresAt));
    return { admin: toAdminView(admin), recoveryCodes, csrfToken: session.csrfToken, expiresAt: session.expiresAt.toISOString() };
  }

  @Post('recovery')
  @HttpCode(200)
  @PublicRoute()
  @UseGuards(SignInRateLimitGuard)
  recover(@Body(new ZodPipe(recoveryRequestSchema)) body: Parsed<typeof recoveryRequestSchema>, @RequestAuditScope() audit?: AuditScope) {
    return this.auth.redeemRecoveryCode(body.name, body.code, audit);
  }

  @Post('session/options')
  @HttpCode(200)
  @PublicRoute()
  @UseGuards(SignInRateLimitGuard)
  signInOptions() {
    return this.auth.signInOptions();
  }

  @Post('session')
  @HttpCode(200)
  @PublicRoute()
  @UseGuards(SignInRateLimitGuard, WebAuthnSignInGuard)
  async signIn(
    @Req() request: WithUser<SignedAssertion>,
    @Res({ passthrough: true }) reply: FastifyReply,
    @Body(new ZodPipe(signInRequestSchema)) _body: Parsed<typeof signInRequestSchema>,
    @RequestAuditScope() audit?: AuditScope,
  ): Promise<SessionView> {
    const { admin, passkeyId } = request.user;
    const session = await this.sessions.create(admin, passkeyId, clientContext(request), recordIn(audit, { operation: 'admin.sign-in', keyName: null, keyVersion: null }));
    void reply.header('set-cookie', sessionCookie(session.cookie, session.expiresAt));
    return { admin: toAdminView(admin), csrfToken: session.csrfToken, expiresAt: session.expiresAt.toISOString() };
  }

  @Get('session')
  @Roles('admin', 'operator', 'auditor')
  session(@Req() request: WithUser<AuthenticatedAdmin>): SessionView {
    const { admin, session, csrfToken } = request.user;
    return { admin: toAdminView(admin), csrfToken, expiresAt: session.expiresAt.toISOString() };
  }

  @Delete('session')
  @HttpCode(204)
  @Roles('admin', 'operator', 'auditor')
  async signOut(
    @Req() request: WithUser<AuthenticatedAdmin>,
    @Res({ passthrough: true }) reply: FastifyReply,
    @RequestAuditScope() audit?: AuditScope,
  ): Promise<void> {
    await this.sessions.signOut(request.user.session, recordIn(audit, { operation: 'admin.sign-out', keyName: null, keyVersion: null }));
    void reply.header('set-cookie', CLEARED_COOKIE);
  }

  @Post('session/sign-out-everywhere')
  @HttpCode(200)
  @Roles('admin', 'operator', 'auditor')
  async signOutEverywhere(
    @Req() request: WithUser<AuthenticatedAdmin>,
    @Res({ passthrough: true }) reply: FastifyReply,
    @RequestAuditScope() audit?: AuditScope,
  ) {
    const record = recordIn(audit, { operation: 'admin.sign-out-everywhere', keyName: null, keyVersion: null });
    const revoked = await this.sessions.signOutEverywhere(request.user.admin.id, record);
    void reply.header('set-cookie', CLEARED_COOKIE);
    return { revokedSessions: revoked };
  }

  @Get('me/passkeys')
  @Roles('admin', 'operator', 'auditor')
  async passkeys(@Req() request: WithUser<AuthenticatedAdmin>): Promise<{ passkeys: PasskeyView[] }> {
    return { passkeys: (await this.repository.listPasskeys(request.user.admin.id)).map(toPasskeyView) };
  }

  /** A step-up challenge for one action on one's own account (adding or removing a passkey, new recovery codes). */
  @Post('me/step-up/options')
  @HttpCode(200)
  @Roles('admin', 'operator', 'auditor')
  stepUpOptions(@Req() request: WithUser<AuthenticatedAdmin>, @Body(new ZodPipe(stepUpOptionsRequestSchema)) body: Parsed<typeof stepUpOptionsRequestSchema>) {
    return this.auth.stepUpOptions(request.user.admin, body);
  }

  @Post('me/passkeys/options')
  @HttpCode(200)
  @Roles('admin', 'operator', 'auditor')
  addPasskeyOptions(@Req() request: WithUser<AuthenticatedAdmin>, @Body(new ZodPipe(addPasskeyOptionsRequestSchema.optional())) body: Parsed<typeof addPasskeyOptionsRequestSchema> | undefined) {
    return this.auth.addPasskeyOptions(request.user.admin, body?.stepUp);
  }

  @Post('me/passkeys')
  @Roles('admin', 'operator', 'auditor')
  async addPasskey(
    @Req() request: WithUser<AuthenticatedAdmin>,
    @Body(new ZodPipe(addPasskeyRequestSchema)) body: Parsed<typeof addPasskeyRequestSchema>,
    @RequestAuditScope() audit?: AuditScope,
  ): Promise<PasskeyView> {
    return toPasskeyView(await this.auth.addPasskey(request.user.admin, body.response, body.name, audit));
  }

  @Patch('me/passkeys/:id')
  @Roles('admin', 'operator', 'auditor')
  async renamePasskey(
    @Req() request: WithUser<AuthenticatedAdmin>,
    @Param('id') id: string,
    @Body(new ZodPipe(renamePasskeyRequestSchema)) body: Parsed<typeof renamePasskeyRequestSchema>,
    @RequestAuditScope() audit?: AuditScope,
  ): Promise<{ passkeys: PasskeyView[] }> {
    await this.auth.renamePasskey(request.user.admin.id, id, body.name, audit);
    return this.passkeys(request);
  }

  @Delete('me/passkeys/:id')
  @Roles('admin', 'operator', 'auditor')
  async removePasskey(
    @Req() request: WithUser<AuthenticatedAdmin>,
    @Param('id') id: string,
    @Body(new ZodPipe(removePasskeyRequestSchema.optional())) body: Parsed<typeof removePasskeyRequestSchema> | undefined,
    @RequestAuditScope() audit?: AuditScope,
  ): Promise<{ passkeys: PasskeyView[] }> {
    // The owner keeps the session they remove it from; their other sessions end.
    await this.auth.removeOwnPasskey(request.user.admin, id, body?.stepUp, request.user.session.id, audit);
    return this.passkeys(request);
  }

  @Post('me/recovery-codes')
  @HttpCode(200)
  @Roles('admin', 'operator', 'auditor')
  async regenerateRecoveryCodes(
    @Req() request: WithUser<AuthenticatedAdmin>,
    @Body(new ZodPipe(regenerateRecoveryCodesRequestSchema.optional())) body: Parsed<typeof regenerateRecoveryCodesRequestSchema> | undefined,
    @RequestAuditScope() audit?: AuditScope,
  ) {
    return { recoveryCodes: await this.auth.regenerateRecoveryCodes(request.user.admin, body?.stepUp, audit) };
  }
}
