import { Body, Controller, Get, HttpCode, Inject, Post, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { ApiError, unsealShareRequestSchema } from '@keyhold/contracts';
import type { z } from 'zod';
import { ZodPipe } from '../common/zod-body.pipe';
import type { AuditScope } from '../audit/audit-scope';
import { RequestAuditScope } from '../audit/audit.decorator';
import type { SealState } from '../seal/seal-state';
import type { ShamirUnsealer, UnsealProgress } from '../seal/shamir-seal';
import { PublicRoute, Roles, SignInRateLimitGuard } from './admin-auth.guards';
import type { AuthenticatedAdmin } from './admin-sessions';
import { ApprovalsService } from './approvals.service';

export const SEAL_SERVICES = Symbol('SEAL_SERVICES');
export interface SealServices {
  state: SealState;
  unsealer: ShamirUnsealer | null;
}

/**
 * Seal status and unsealing. Status and share submission are public on purpose: a freshly started, sealed
 * Keyhold may have no administrator yet (or none able to sign in), and the shares themselves are the
 * credential, as with Vault's sys/unseal. Submissions are rate-limited per source address; a share is
 * checked, counted and held in memory only. Sealing again is a sensitive operation (passkey approval).
 */
@Controller('api/v1/seal')
export class SealController {
  constructor(
    @Inject(SEAL_SERVICES) private readonly seal: SealServices,
    private readonly approvals: ApprovalsService,
  ) {}

  @Get()
  @PublicRoute()
  status(): UnsealProgress {
    if (this.seal.unsealer) return this.seal.unsealer.progress();
    return { sealed: this.seal.state.sealed, protection: this.seal.state.protection, threshold: null, shares: null, received: 0 };
  }

  @Post('shares')
  @HttpCode(200)
  @PublicRoute()
  @UseGuards(SignInRateLimitGuard)
  submit(@Body(new ZodPipe(unsealShareRequestSchema)) body: z.output<typeof unsealShareRequestSchema>): Promise<UnsealProgress> {
    if (!this.seal.unsealer) {
      throw new ApiError(
        'INVALID_STATE',
        `this Keyhold is protected by ${this.seal.state.protection}, not Shamir shares; ${this.seal.state.sealed ? 'restart it to unseal' : 'it is unsealed'}`,
      );
    }
    return this.seal.unsealer.submit(body.share);
  }

  /** Seal again: opens a pending `seal` operation that runs once approved (a fresh passkey assertion, and the quorum). */
  @Post()
  @Roles('admin')
  requestSeal(@Req() request: FastifyRequest & { user: AuthenticatedAdmin }, @RequestAuditScope() audit?: AuditScope) {
    return this.approvals.request(request.user.admin, { kind: 'seal' }, audit);
  }
}
