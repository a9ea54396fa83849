import { type CanActivate, type ExecutionContext, Inject, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthGuard } from '@nestjs/passport';
import { ApiError, type Operation } from '@keyhold/contracts';
import type { ServiceIdentity } from './certificate-identity';
import type { GrantPolicy } from './grant-policy';
import { MTLS_STRATEGY, noClientIdentity } from './mtls.strategy';

/** Supplies the grant policy in force; the admin plane swaps it when grants change. */
export interface GrantPolicySource {
  current(): GrantPolicy;
}
export const GRANT_POLICY_SOURCE = Symbol('GRANT_POLICY_SOURCE');

const OPERATION_METADATA = 'keyhold:operation';

export interface OperationRequirement {
  operation: Operation;
  /**
   * `path` checks the grant against the `:name` route parameter before the handler runs. `handler` means the
   * key is only known inside the handler (it is read from the ciphertext, or a list is filtered): the guard
   * checks that the identity holds the operation somewhere, and the service checks the key itself.
   */
  key: 'path' | 'handler';
}

/** Every service-plane route states the operation it performs; a route without one is refused. */
export const RequireOperation = (operation: Operation, key: OperationRequirement['key'] = 'path') =>
  SetMetadata(OPERATION_METADATA, { operation, key } satisfies OperationRequirement);

export const PUBLIC_TO_AUTHENTICATED = 'keyhold:public-to-authenticated';
/** For routes any authenticated caller may use (health): still behind mTLS, but needing no grant. */
export const AnyAuthenticatedCaller = () => SetMetadata(PUBLIC_TO_AUTHENTICATED, true);

@Injectable()
export class MtlsAuthGuard extends AuthGuard(MTLS_STRATEGY) {
  override handleRequest<TUser = ServiceIdentity>(error: unknown, user: TUser | false): TUser {
    if (error) throw error;
    if (!user) throw noClientIdentity();
    return user;
  }
}

@Injectable()
export class OperationGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    @Inject(GRANT_POLICY_SOURCE) private readonly grants: GrantPolicySource,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const handler = context.getHandler();
    const requirement = this.reflector.get<OperationRequirement | undefined>(OPERATION_METADATA, handler);
    const request = context.switchToHttp().getRequest<{ user?: ServiceIdentity; params?: Record<string, string> }>();
    const identity = request.user;
    if (!identity) throw noClientIdentity();
    if (!requirement) {
      if (this.reflector.get<boolean | undefined>(PUBLIC_TO_AUTHENTICATED, handler)) return true;
      // Deny by default: a route that forgot to declare its operation is closed, not open.
      throw new ApiError('FORBIDDEN', 'this route declares no operation');
    }
    authorizeOperation(this.grants.current(), identity, requirement, request.params?.name ?? '');
    return true;
  }
}

/**
 * The grant check of one request: the operation on the key named in the path, or (key `handler`) the
 * operation somewhere, the service then checking the key it finds. Throws FORBIDDEN.
 */
export function authorizeOperation(policy: GrantPolicy, identity: ServiceIdentity, requirement: OperationRequirement, pathKeyName: string): void {
  if (requirement.key === 'path') {
    policy.authorize(identity.id, requirement.operation, pathKeyName);
  } else if (!policy.allowsSomewhere(identity.id, requirement.operation)) {
    throw new ApiError('FORBIDDEN', `'${identity.id}' has no grant for ${requirement.operation}`);
  }
}
