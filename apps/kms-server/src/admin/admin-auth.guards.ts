import { type CanActivate, type ExecutionContext, Inject, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthGuard, PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-custom';
import { ApiError, type AdminRole } from '@keyhold/contracts';
import { RateLimitedError, RateLimiter } from '@keyhold/auth';
import { AdminAuthService, type SignedAssertion } from './admin-auth.service';
import { type AuthenticatedAdmin, AdminSessions, SESSION_COOKIE } from './admin-sessions';

export const ADMIN_SESSION_STRATEGY = 'admin-session';
export const WEBAUTHN_STRATEGY = 'webauthn';

interface AdminRequest {
  headers: Record<string, string | string[] | undefined>;
  method: string;
  ip?: string;
  body?: unknown;
  user?: AuthenticatedAdmin | SignedAssertion;
}

export function readCookie(request: AdminRequest, name: string): string | undefined {
  const header = request.headers.cookie;
  const raw = Array.isArray(header) ? header.join('; ') : header;
  if (!raw) return undefined;
  for (const part of raw.split(';')) {
    const index = part.indexOf('=');
    if (index > 0 && part.slice(0, index).trim() === name) return decodeURIComponent(part.slice(index + 1).trim());
  }
  return undefined;
}

/** Passport strategy for admin sessions: the `__Host-` cookie, checked against Postgres on every request. */
@Injectable()
export class AdminSessionStrategy extends PassportStrategy(Strategy, ADMIN_SESSION_STRATEGY) {
  constructor(private readonly sessions: AdminSessions) {
    super();
  }

  validate(request: AdminRequest): Promise<AuthenticatedAdmin> {
    return this.sessions.authenticate(readCookie(request, SESSION_COOKIE));
  }
}

/** Passport strategy for signing in: a WebAuthn assertion answering a challenge Keyhold issued. */
@Injectable()
export class WebAuthnStrategy extends PassportStrategy(Strategy, WEBAUTHN_STRATEGY) {
  constructor(private readonly auth: AdminAuthService) {
    super();
  }

  validate(request: AdminRequest): Promise<SignedAssertion> {
    return this.auth.verifySignIn((request.body as { response?: unknown } | undefined)?.response);
  }
}

const PUBLIC_ROUTE = 'keyhold:admin-public';
const ROLES = 'keyhold:admin-roles';
/** Routes reachable without a session: enrolment, sign-in, recovery, the API document. */
export const PublicRoute = () => SetMetadata(PUBLIC_ROUTE, true);
/** Which roles may use a route; every session-protected route must say, or it is refused. */
export const Roles = (...roles: AdminRole[]) => SetMetadata(ROLES, roles);

@Injectable()
export class AdminSessionGuard extends AuthGuard(ADMIN_SESSION_STRATEGY) {
  constructor(private readonly reflector: Reflector) {
    super();
  }

  override canActivate(context: ExecutionContext) {
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, [context.getHandler(), context.getClass()])) return true;
    return super.canActivate(context);
  }

  override handleRequest<TUser>(error: unknown, user: TUser | false): TUser {
    if (error) throw error;
    if (!user) throw new ApiError('UNAUTHENTICATED', 'sign in with a passkey first');
    return user;
  }
}

@Injectable()
export class WebAuthnSignInGuard extends AuthGuard(WEBAUTHN_STRATEGY) {
  override handleRequest<TUser>(error: unknown, user: TUser | false): TUser {
    if (error) throw error;
    if (!user) throw new ApiError('UNAUTHENTICATED', 'passkey refused');
    return user;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Role check and CSRF check for every session-protected route; deny when a route declares no roles. */
@Injectable()
export class AdminAccessGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly sessions: AdminSessions,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets)) return true;
    const request = context.switchToHttp().getRequest<AdminRequest & { user: AuthenticatedAdmin }>();
    const roles = this.reflector.getAllAndOverride<AdminRole[] | undefined>(ROLES, targets);
    if (!roles) throw new ApiError('FORBIDDEN', 'this route declares no roles');
    if (!roles.includes(request.user.admin.role)) {
      throw new ApiError('FORBIDDEN', `the ${request.user.admin.role} role may not do this`);
    }
    if (!SAFE_METHODS.has(request.method)) {
      const header = request.headers['x-csrf-token'];
      this.sessions.checkCsrf(request.user, Array.isArray(header) ? header[0] : header);
    }
    return true;
  }
}

export const SIGN_IN_LIMITS = Symbol('SIGN_IN_LIMITS');

/** Sign-in, enrolment and recovery attempts are limited per source address (and per account in the service). */
@Injectable()
export class SignInRateLimitGuard implements CanActivate {
  constructor(@Inject(SIGN_IN_LIMITS) private readonly limiter: RateLimiter) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<AdminRequest>();
    const retryAfter = this.limiter.take(`ip:${request.ip ?? 'unknown'}`);
    if (retryAfter > 0) throw new RateLimitedError(retryAfter);
    return true;
  }
}
