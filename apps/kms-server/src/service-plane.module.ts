import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { PassportModule } from '@nestjs/passport';
import {
  CERTIFICATE_CLOCK,
  type CertificateClock,
  GRANT_POLICY_SOURCE,
  type GrantPolicySource,
  MtlsAuthGuard,
  MtlsStrategy,
  OperationGuard,
  RATE_LIMITER,
  REVOCATION_CHECK,
  RateLimitGuard,
  type RevocationCheck,
  type RateLimiter,
} from '@keyhold/auth';
import { ApiErrorFilter } from './common/api-error.filter';
import { CryptoOpsService } from './crypto-ops/crypto-ops.service';
import { HealthController } from './health/health.controller';
import { HealthService } from './health/health.service';
import { MetricsController } from './metrics/metrics.controller';
import { ServerMetrics } from './metrics/server-metrics';
import { KeysController } from './keys/keys.controller';
import { KeysService } from './keys/keys.service';
import { SEAL_STATE, ServicePlaneSealGuard } from './seal/seal.guard';
import type { SealState } from './seal/seal-state';

export interface ServicePlaneServices {
  keys: KeysService;
  crypto: CryptoOpsService;
  health: HealthService;
  sealState: SealState;
  grants: GrantPolicySource;
  revocations: RevocationCheck;
  rateLimiter: RateLimiter;
  certificateClock: CertificateClock;
  metrics: ServerMetrics;
}

/**
 * The service plane (mTLS listener): key lifecycle, health and metrics. The cryptographic operations are served ahead
 * of this module by CryptoHttpHandler (crypto-ops/crypto-http-handler.ts), with the same checks. Every route passes
 * the mTLS guard, the per-identity rate limit, the grant guard, then the seal guard (503 SEALED); errors leave through one filter in the contract's shape.
 */
@Module({})
export class ServicePlaneModule {
  static register(services: ServicePlaneServices): DynamicModule {
    return {
      module: ServicePlaneModule,
      imports: [PassportModule],
      controllers: [KeysController, HealthController, MetricsController],
      providers: [
        { provide: KeysService, useValue: services.keys },
        { provide: CryptoOpsService, useValue: services.crypto },
        { provide: HealthService, useValue: services.health },
        { provide: ServerMetrics, useValue: services.metrics },
        { provide: GRANT_POLICY_SOURCE, useValue: services.grants },
        { provide: RATE_LIMITER, useValue: services.rateLimiter },
        { provide: CERTIFICATE_CLOCK, useValue: services.certificateClock },
        { provide: REVOCATION_CHECK, useValue: services.revocations },
        { provide: SEAL_STATE, useValue: services.sealState },
        MtlsStrategy,
        { provide: APP_GUARD, useClass: MtlsAuthGuard },
        { provide: APP_GUARD, useClass: RateLimitGuard },
        { provide: APP_GUARD, useClass: OperationGuard },
        { provide: APP_GUARD, useClass: ServicePlaneSealGuard },
        { provide: APP_FILTER, useClass: ApiErrorFilter },
      ],
    };
  }
}
