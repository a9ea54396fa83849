import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { PassportModule } from '@nestjs/passport';
import type { RateLimiter } from '@keyhold/auth';
import { ApiErrorFilter } from '../common/api-error.filter';
import { KeysService } from '../keys/keys.service';
import { AdminRepository } from './admin.repository';
import { AdminAuthController } from './admin-auth.controller';
import {
  AdminAccessGuard,
  AdminSessionGuard,
  AdminSessionStrategy,
  SIGN_IN_LIMITS,
  SignInRateLimitGuard,
  WebAuthnSignInGuard,
  WebAuthnStrategy,
} from './admin-auth.guards';
import { AdminAuthService } from './admin-auth.service';
import { AdminSessions } from './admin-sessions';
import { ApprovalsController } from './approvals.controller';
import { AUDIT_SERVICES, AuditController, type AuditServices } from './audit.controller';
import { ApprovalsService } from './approvals.service';
import { ADMIN_PUBLIC_ORIGIN, AdminsController } from './admins.controller';
import { DocsController } from './docs.controller';
import { KeysAdminController } from './keys-admin.controller';
import { MasterKeyController } from './master-key.controller';
import { MasterKeyService } from '../master-key/master-key.service';
import { ServiceIdentitiesController } from './service-identities.controller';
import { SEAL_SERVICES, SealController, type SealServices } from './seal.controller';
import { CertificateAuthorityService } from '../service-identities/certificate-authority.service';
import { DatabaseGrantPolicySource } from '../service-identities/database-grant-policy-source';
import { GrantsRepository } from '../service-identities/grants.repository';

export interface AdminPlaneServices {
  repository: AdminRepository;
  auth: AdminAuthService;
  sessions: AdminSessions;
  keys: KeysService;
  signInLimiter: RateLimiter;
  publicOrigin: string;
  grants: GrantsRepository;
  grantPolicy: DatabaseGrantPolicySource;
  authority: CertificateAuthorityService;
  approvals: ApprovalsService;
  seal: SealServices;
  masterKeys: MasterKeyService;
  audit: AuditServices;
}

/**
 * The admin plane (its own listener): passkey enrolment and sign-in, sessions, roles, and the key lifecycle.
 * Every route passes the session guard (unless public) and the role + CSRF guard; none is reachable with a
 * service certificate, and no admin session opens the service plane.
 */
@Module({})
export class AdminPlaneModule {
  static register(services: AdminPlaneServices): DynamicModule {
    return {
      module: AdminPlaneModule,
      imports: [PassportModule],
      controllers: [AdminAuthController, AdminsController, KeysAdminController, ServiceIdentitiesController, ApprovalsController, SealController, AuditController, MasterKeyController, DocsController],
      providers: [
        { provide: AdminRepository, useValue: services.repository },
        { provide: AdminAuthService, useValue: services.auth },
        { provide: AdminSessions, useValue: services.sessions },
        { provide: KeysService, useValue: services.keys },
        { provide: SIGN_IN_LIMITS, useValue: services.signInLimiter },
        { provide: ADMIN_PUBLIC_ORIGIN, useValue: services.publicOrigin },
        { provide: GrantsRepository, useValue: services.grants },
        { provide: DatabaseGrantPolicySource, useValue: services.grantPolicy },
        { provide: CertificateAuthorityService, useValue: services.authority },
        { provide: ApprovalsService, useValue: services.approvals },
        { provide: SEAL_SERVICES, useValue: services.seal },
        { provide: MasterKeyService, useValue: services.masterKeys },
        { provide: AUDIT_SERVICES, useValue: services.audit },
        AdminSessionStrategy,
        WebAuthnStrategy,
        SignInRateLimitGuard,
        WebAuthnSignInGuard,
        { provide: APP_GUARD, useClass: AdminSessionGuard },
        { provide: APP_GUARD, useClass: AdminAccessGuard },
        { provide: APP_FILTER, useClass: ApiErrorFilter },
      ],
    };
  }
}
