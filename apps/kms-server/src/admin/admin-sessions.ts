import type { EntityManager } from 'typeorm';
import { ApiError } from '@keyhold/contracts';
import { constantTimeEqual, hmacSha256, sha256 } from '@keyhold/crypto-core';
import { hashSecret, makeLookupToken, splitToken, verifySecret } from '@keyhold/auth';
import { type AdminRecord, type AdminRepository, type SessionRecord, removedPasskeyError } from './admin.repository';

export const SESSION_COOKIE = '__Host-keyhold_session';

export interface SessionPolicy {
  idleTimeoutMs: number;
  absoluteTimeoutMs: number;
}

export const DEFAULT_SESSION_POLICY: SessionPolicy = { idleTimeoutMs: 30 * 60_000, absoluteTimeoutMs: 12 * 3_600_000 };

export interface AuthenticatedAdmin {
  admin: AdminRecord;
  session: SessionRecord;
  /** Sent back by the console in `x-csrf-token` on every state-changing request. */
  csrfToken: string;
}

const TOUCH_INTERVAL_MS = 60_000;
const MAX_VERIFIED = 10_000;

/**
 * Server-side admin sessions. The cookie holds `<id>.<secret>`; Postgres holds only an Argon2id hash of the
 * secret. Argon2 costs tens of milliseconds, so a verified secret is remembered (as a SHA-256, compared in
 * constant time) for as long as the process lives; revocation and timeouts are still read from Postgres on
 * every request. The CSRF token is an HMAC of the session secret: nothing more to store, and only someone
 * who can read the session's own responses learns it.
 */
export class AdminSessions {
  private readonly verified = new Map<string, Buffer>();

  constructor(
    private readonly repository: AdminRepository,
    private readonly now: () => Date,
    private readonly policy: SessionPolicy = DEFAULT_SESSION_POLICY,
  ) {}

  /**
   * A session opened with `passkeyId`, refused if that passkey was removed meanwhile (a removal ends the sessions it
   * finds, so one written after it would outlive it). `alsoInTransaction` runs in the session's transaction (the
   * sign-in's audit record).
   */
  async create(
    admin: AdminRecord,
    passkeyId: string,
    context: { sourceAddress: string | null; userAgent: string | null },
    alsoInTransaction?: (manager: EntityManager) => Promise<void>,
  ): Promise<{ cookie: string; csrfToken: string; expiresAt: Date }> {
    const { id, secret, token } = makeLookupToken();
    const now = this.now();
    const expiresAt = new Date(now.getTime() + this.policy.absoluteTimeoutMs);
    const inserted = await this.repository.insertSession({
      id,
      secretHash: await hashSecret(secret),
      adminId: admin.id,
      createdAt: now,
      lastSeenAt: now,
      expiresAt,
      revokedAt: null,
      ...context,
    }, passkeyId, alsoInTransaction);
    if (!inserted) throw removedPasskeyError();
    this.remember(id, secret);
    return { cookie: token, csrfToken: csrfTokenFor(secret), expiresAt };
  }

  /** The admin behind a session cookie, or an UNAUTHENTICATED error that says why. */
  async authenticate(cookie: string | undefined): Promise<AuthenticatedAdmin> {
    const parts = cookie ? splitToken(cookie) : null;
    if (!parts) throw new ApiError('UNAUTHENTICATED', 'sign in with a passkey first');
    const session = await this.repository.findSession(parts.id);
    const now = this.now();
    if (!session || !(await this.secretMatches(session, parts.secret))) {
      throw new ApiError('UNAUTHENTICATED', 'the session is not valid; sign in again');
    }
    if (session.revokedAt) throw new ApiError('UNAUTHENTICATED', 'the session was signed out; sign in again');
    if (session.expiresAt.getTime() <= now.getTime()) throw new ApiError('UNAUTHENTICATED', 'the session has expired; sign in again');
    if (session.lastSeenAt.getTime() + this.policy.idleTimeoutMs <= now.getTime()) {
      throw new ApiError('UNAUTHENTICATED', 'the session timed out after inactivity; sign in again');
    }
    const admin = await this.repository.findAdmin(session.adminId);
    if (!admin) throw new ApiError('UNAUTHENTICATED', 'this administrator was removed');
    if (now.getTime() - session.lastSeenAt.getTime() > TOUCH_INTERVAL_MS) await this.repository.touchSession(session.id, now);
    return { admin, session, csrfToken: csrfTokenFor(parts.secret) };
  }

  checkCsrf(authenticated: AuthenticatedAdmin, header: string | undefined): void {
    if (!header || !constantTimeEqual(Buffer.from(header), Buffer.from(authenticated.csrfToken))) {
      throw new ApiError('FORBIDDEN', 'missing or wrong x-csrf-token header (read it from GET /api/v1/session)');
    }
  }

  /** `alsoInTransaction` runs in the revocation's transaction (the sign-out's audit record). */
  async signOut(session: SessionRecord, alsoInTransaction?: (manager: EntityManager) => Promise<void>): Promise<void> {
    await this.repository.revokeSession(session.id, this.now(), alsoInTransaction);
    this.verified.delete(session.id);
  }

  /** The number of sessions ended; `alsoInTransaction` runs in their transaction (the audit record). */
  async signOutEverywhere(adminId: string, alsoInTransaction?: (manager: EntityManager) => Promise<void>): Promise<number> {
    return this.repository.revokeAllSessions(adminId, this.now(), alsoInTransaction);
  }

  private async secretMatches(session: SessionRecord, secret: string): Promise<boolean> {
    const known = this.verified.get(session.id);
    if (known) return constantTimeEqual(known, sha256(secret));
    if (!(await verifySecret(session.secretHash, secret))) return false;
    this.remember(session.id, secret);
    return true;
  }

  private remember(id: string, secret: string): void {
    if (this.verified.size >= MAX_VERIFIED) this.verified.clear();
    this.verified.set(id, sha256(secret));
  }
}

function csrfTokenFor(secret: string): string {
  return hmacSha256(Buffer.from(secret, 'utf8'), 'keyhold csrf v1').toString('base64url');
}
