import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { HealthController } from '../health/health.controller';
import { MetricsController } from '../metrics/metrics.controller';
import { SealState, sealedError } from './seal-state';

export const SEAL_STATE = Symbol('SEAL_STATE');

/**
 * The service plane while sealed: every route but health and metrics answers 503 SEALED. Runs after authentication and
 * the grant check, so an unknown caller learns nothing it could not learn from health.
 */
@Injectable()
export class ServicePlaneSealGuard implements CanActivate {
  constructor(@Inject(SEAL_STATE) private readonly seal: SealState) {}

  canActivate(context: ExecutionContext): boolean {
    if (context.getClass() === HealthController || context.getClass() === MetricsController) return true;
    if (this.seal.sealed) throw sealedError();
    return true;
  }
}
