import { Logger } from '@nestjs/common';
import { ApiError, type OpenInvitationView, type StepUpAction, type StepUpOptionsRequest } from '@keyhold/contracts';
import {
  RateLimitedError,
  RateLimiter,
  WebAuthnCeremonies,
  WebAuthnError,
  challengeOfResponse,
  generateRecoveryCodes,
  hashSecret,
  makeLookupToken,
  normaliseRecoveryCode,
  splitToken,
  verifySecret,
} from '@keyhold/auth';
import { randomToken, randomUuid } from '@keyhold/crypto-core';
import type { EntityManager } from 'typeorm';
import { type AuditScope, recordIn } from '../audit/audit-scope';
import { ConcurrencyGate } from '../common/concurrency-gate';
import { type AdminRecord, type AdminRepository, type AdminRole, type EnrolmentTokenRecord, type PasskeyRecord, removedPasskeyError } from './admin.repository';
import type { PostgresChallengeStore } from './challenge-store';

export const SETUP_TOKEN_TTL_MS = 24 * 3_600_000;
/** An Argon2id hash of a secret nobody holds, verified against when there is nothing real to compare. */
let dummyHash: Promise<string> | null = null;
const timingDecoy = () => (dummyHash ??= hashSecret(randomToken(32)));
export const INVITATION_TTL_MS = 72 * 3_600_000;
export const RECOVERY_ENROLMENT_TTL_MS = 15 * 60_000;
/** Recovery codes an administrator is given at enrolment and each time they replace them. */
const RECOVERY_CODES = 10;

/** Who signed a WebAuthn assertion, and with which of their passkeys. */
export interface SignedAssertion {
  admin: AdminRecord;
  passkeyId: string;
}

export interface EnrolmentResult {
  admin: AdminRecord;
  /** The passkey just registered: the enrolment's session is opened with it. */
  passkeyId: string;
  /** Shown once, at the first enrolment of an administrator; only their Argon2id hashes are kept. */
  recoveryCodes: string[] | null;
}

/**
 * Who may become or act as an administrator: enrolment through a one-time token (first-admin setup,
 * invitation, or recovery), passkey registration and sign-in, recovery codes. Every token, code and secret is
 * stored only as an Argon2id hash; every WebAuthn challenge is single-use and expires in five minutes.
 */
export class AdminAuthService {
  private readonly logger = new Logger(AdminAuthService.name);
  /**
   * A recovery attempt costs RECOVERY_CODES Argon2id checks (about 0.3 s of CPU and 19 MiB each) before anyone is
   * known, so the per-address limit alone would let many addresses fill the thread pool: one attempt is checked
   * at a time per instance, a few wait, and the rest are refused at once (429).
   */
  private readonly recoveryGate = new ConcurrencyGate({ limit: 1, maxWaiting: 4, retryAfterSeconds: 2, busy: 'other recovery attempts are being checked' });

  constructor(
    private readonly repository: AdminRepository,
    private readonly challenges: PostgresChallengeStore,
    private readonly webauthn: WebAuthnCeremonies,
    private readonly now: () => Date,
    /** Sign-in and recovery attempts per account, besides the per-address limit at the edge. */
    private readonly accountLimiter: RateLimiter = new RateLimiter({ perSecond: 0, burst: 0 }),
  ) {}

  /**
   * On a start with no administrator, a setup token for the first one (null once one exists). It replaces any
   * earlier one nobody used: of the links printed by successive starts, only the latest opens.
   */
  async ensureSetupToken(): Promise<string | null> {
    if ((await this.repository.countActiveAdmins()) > 0) return null;
    const { token, value } = await this.newEnrolmentToken({ kind: 'setup', role: 'admin', name: null, adminId: null, createdBy: null }, SETUP_TOKEN_TTL_MS);
    await this.repository.transaction(async (manager) => {
      await this.repository.expireSetupTokens(token.createdAt, manager);
      await this.repository.insertEnrolmentToken(token, manager);
    });
    return value;
  }

  async invite(inviter: AdminRecord, role: AdminRole, name: string | null, audit?: AuditScope): Promise<{ token: string; expiresAt: Date }> {
    if (role === 'admin') await this.refuseNewAdminsUnderQuorum('invite them as operator or auditor, then request {"kind":"set-admin-role"} at POST /api/v1/operations');
    if (name && (await this.repository.isAdminNameTaken(name))) throw nameTaken(name);
    const token = await this.issueEnrolmentToken(
      { kind: 'invitation', role, name, adminId: null, createdBy: inviter.id },
      INVITATION_TTL_MS,
      recordIn(audit, { operation: 'admins.invite', keyName: null, keyVersion: null }),
    );
    return { token, expiresAt: new Date(this.now().getTime() + INVITATION_TTL_MS) };
  }

  /** The invitations nobody used yet that have not expired (nor been revoked): what they grant, never a secret. */
  async openInvitations(): Promise<OpenInvitationView[]> {
    return (await this.repository.listOpenInvitations(this.now())).map((token) => ({
      id: token.id,
      role: token.role,
      name: token.name,
      createdBy: token.createdBy ?? '',
      createdAt: token.createdAt.toISOString(),
      expiresAt: token.expiresAt.toISOString(),
    }));
  }

  /**
   * Revokes an invitation nobody used yet (a link sent to the wrong person): it expires now, and the revocation
   * and its audit record commit together. Completing an enrolment re-checks the token under a lock, so a link
   * revoked between the options and the passkey answer enrols nobody.
   */
  async revokeInvitation(id: string, audit?: AuditScope): Promise<void> {
    const revoked = await this.repository.revokeInvitation(id, this.now(), recordIn(audit, { operation: 'admins.revoke-invitation', keyName: null, keyVersion: null }));
    if (!revoked) throw new ApiError('NOT_FOUND', 'no such open invitation: it is unknown, used already, expired or revoked');
  }

  /** A direct role change: between operator and auditor always; to or from admin only while the quorum is 1. */
  async changeRole(id: string, role: AdminRole, audit?: AuditScope): Promise<AdminRecord> {
    const target = /^[0-9a-f-]{36}$/.test(id) ? await this.repository.findAdmin(id) : null;
    if (!target) throw new ApiError('NOT_FOUND', 'no such administrator');
    if (target.role === 'admin' || role === 'admin') await this.refuseNewAdminsUnderQuorum('request {"kind":"set-admin-role"} at POST /api/v1/operations');
    await this.repository.transaction(async (manager) => {
      if (target.role === 'admin' && role !== 'admin') await this.repository.refuseLosingTheLastAdmin(target.id, manager);
      await this.repository.updateAdminRole(id, role, this.now(), recordIn(audit, { operation: 'admins.change-role', keyName: null, keyVersion: null }), manager);
    });
    return { ...target, role };
  }

  /**
   * With a quorum above one, no single admin may change who the admins are: demoting the others would shrink
   * the quorum to themselves, and admin accounts they enrolled themselves would supply its approvals. Granting
   * or taking away the admin role is then the `set-admin-role` sensitive operation, approved by the quorum.
   */
  private async refuseNewAdminsUnderQuorum(howInstead: string, manager?: EntityManager): Promise<void> {
    const quorum = await this.repository.approvalQuorum(manager);
    if (quorum > 1) throw new ApiError('INVALID_STATE', `with a quorum of ${quorum}, granting or taking away the admin role needs approvals: ${howInstead}`);
  }

  /** An admin invitation made while the quorum was 1 does not outlive a higher quorum. */
  private async refuseStaleAdminInvitation(record: EnrolmentTokenRecord, manager?: EntityManager): Promise<void> {
    if (record.kind === 'invitation' && record.role === 'admin') {
      await this.refuseNewAdminsUnderQuorum('this link invites an admin; ask for an operator or auditor invitation instead, and then for the admin role', manager);
    }
  }

  /** Registration options for whoever holds a valid enrolment token. The token is checked, not yet used. */
  async enrolmentOptions(token: string, name: string | undefined): Promise<object & { challenge: string }> {
    const record = await this.checkEnrolmentToken(token);
    await this.refuseStaleAdminInvitation(record);
    const existing = record.adminId ? await this.repository.findAdmin(record.adminId) : null;
    const adminName = existing?.name ?? record.name ?? name;
    if (!adminName) throw new ApiError('VALIDATION_FAILED', 'name: give the new administrator a name');
    if (!existing && (await this.repository.isAdminNameTaken(adminName))) throw nameTaken(adminName);
    const webauthnUserId = existing?.webauthnUserId ?? randomToken(32);
    const options = await this.webauthn.registrationOptions({
      userId: webauthnUserId,
      userName: adminName,
      displayName: adminName,
      excludeCredentialIds: existing ? (await this.repository.listPasskeys(existing.id)).map((p) => p.credentialId) : [],
    });
    await this.challenges.issue('enrolment', { tokenId: record.id, webauthnUserId, name: adminName }, { challenge: options.challenge });
    return options;
  }

  /** Completes enrolment: verifies the passkey, uses up the token, creates (or recovers) the administrator. */
  async completeEnrolment(token: string, response: unknown, passkeyName: string | undefined, audit?: AuditScope): Promise<EnrolmentResult> {
    const parts = splitToken(token);
    const challenge = challengeOfResponse(response);
    const data = challenge ? (await this.challenges.consume(challenge, 'enrolment'))?.data : null;
    if (!parts || !challenge || !data || data.tokenId !== parts.id) {
      throw new ApiError('UNAUTHENTICATED', 'the registration answers no current challenge for this token; start again');
    }
    const credential = await this.verifyRegistration(response, challenge);
    const now = this.now();
    return this.repository.transaction(async (manager) => {
      // The token row is locked: two enrolments racing with one token cannot both succeed.
      const record = await this.repository.findEnrolmentToken(parts.id, manager, true);
      if (!record || !(await verifySecret(record.secretHash, parts.secret))) throw invalidToken();
      if (record.usedAt) throw new ApiError('UNAUTHENTICATED', 'this link was already used');
      if (record.expiresAt.getTime() <= now.getTime()) throw new ApiError('UNAUTHENTICATED', 'this link has expired; ask for a new one');
      if (record.kind === 'setup') await this.repository.lockFirstAdminEnrolment(manager);
      if (record.kind === 'setup' && (await this.repository.countActiveAdmins(manager)) > 0) {
        throw new ApiError('UNAUTHENTICATED', 'Keyhold already has an administrator; ask them for an invitation');
      }
      await this.refuseStaleAdminInvitation(record, manager);
      let admin: AdminRecord;
      let recoveryCodes: string[] | null = null;
      if (record.kind === 'recovery' && record.adminId) {
        const existing = await this.repository.findAdmin(record.adminId, manager);
        if (!existing) throw invalidToken();
        admin = existing;
      } else {
        admin = {
          id: randomUuid(),
          name: String(data.name),
          role: record.role,
          webauthnUserId: String(data.webauthnUserId),
          createdAt: now,
          removedAt: null,
        };
        if (!(await this.repository.insertAdmin(admin, manager))) throw nameTaken(admin.name);
        recoveryCodes = generateRecoveryCodes(RECOVERY_CODES);
        await this.repository.replaceRecoveryCodes(admin.id, await Promise.all(recoveryCodes.map((code) => hashSecret(normaliseRecoveryCode(code)))), now, manager);
      }
      const passkeyId = randomUuid();
      await this.repository.insertPasskey({ ...credential, id: passkeyId, adminId: admin.id, name: passkeyName ?? 'passkey', createdAt: now, lastUsedAt: null }, manager);
      await this.repository.markTokenUsed(record.id, admin.id, now, manager);
      // By the administrator it creates (or recovers): no one was signed in.
      await audit?.record(manager, { operation: 'admin.enrol', keyName: null, keyVersion: null, actor: `admin:${admin.id}` });
      return { admin, passkeyId, recoveryCodes };
    });
  }

  async signInOptions(): Promise<object & { challenge: string }> {
    const options = await this.webauthn.authenticationOptions({});
    await this.challenges.issue('sign-in', {}, { challenge: options.challenge });
    return options;
  }

  /** Verifies a discoverable-credential assertion; the passport WebAuthn strategy calls this. */
  async verifySignIn(response: unknown): Promise<SignedAssertion> {
    const challenge = challengeOfResponse(response);
    if (!challenge || !(await this.challenges.consume(challenge, 'sign-in'))) {
      throw new ApiError('UNAUTHENTICATED', 'the sign-in answers no current challenge (used, expired or unknown); start again');
    }
    return this.verifyAssertionOf(response, challenge);
  }

  /**
   * Checks an assertion over `challenge` by any passkey of an active admin (with `ownerId`, only by a passkey of
   * that admin: another's is refused before its signature is checked); moves its counter forward. What the passkey
   * signs for must still be written under lockActivePasskey: it may be removed as soon as this returns.
   */
  async verifyAssertionOf(response: unknown, challenge: string, ownerId?: string): Promise<SignedAssertion> {
    const credentialId = (response as { id?: unknown })?.id;
    const passkey = typeof credentialId === 'string' ? await this.repository.findPasskeyByCredentialId(credentialId) : null;
    if (!passkey) throw new ApiError('UNAUTHENTICATED', 'this passkey is not registered with Keyhold');
    if (ownerId !== undefined && passkey.adminId !== ownerId) throw new ApiError('UNAUTHENTICATED', 'confirm with one of your own passkeys');
    const retryAfter = this.accountLimiter.take(`admin:${passkey.adminId}`);
    if (retryAfter > 0) throw new RateLimitedError(retryAfter);
    let newCounter: number;
    try {
      ({ newCounter } = await this.webauthn.verifyAuthentication({
        response,
        expectedChallenge: challenge,
        credential: { id: passkey.credentialId, publicKey: passkey.publicKey, counter: passkey.counter, transports: passkey.transports },
      }));
    } catch (error) {
      if (error instanceof WebAuthnError && error.code === 'COUNTER_REGRESSION') {
        await this.repository.recordCounterRegression(passkey.id);
        this.logger.warn({ msg: 'passkey signature counter went backwards: possible cloned authenticator', passkeyId: passkey.id, adminId: passkey.adminId });
      }
      throw webauthnRefusal(error);
    }
    if (!(await this.repository.recordPasskeyUse(passkey.id, passkey.counter, newCounter, this.now()))) {
      throw new ApiError('UNAUTHENTICATED', 'this passkey was used concurrently, or removed meanwhile; try again');
    }
    const admin = await this.repository.findAdmin(passkey.adminId);
    if (!admin) throw new ApiError('UNAUTHENTICATED', 'this administrator was removed');
    return { admin, passkeyId: passkey.id };
  }

  /**
   * Step-up options: a challenge for one `action` of this admin, answered by one of their own passkeys with user
   * verification. It is single-use and expires in five minutes, like every challenge; the action uses it up.
   */
  async stepUpOptions(admin: AdminRecord, request: StepUpOptionsRequest): Promise<object & { challenge: string }> {
    const passkeys = await this.repository.listPasskeys(admin.id);
    if (request.action === 'remove-passkey' && !passkeys.some((passkey) => passkey.id === request.passkeyId)) {
      throw new ApiError('NOT_FOUND', 'no such passkey of yours');
    }
    const options = await this.webauthn.authenticationOptions({
      allowCredentialIds: passkeys.map((passkey) => ({ id: passkey.credentialId, transports: passkey.transports })),
    });
    await this.challenges.issue('step-up', { adminId: admin.id, ...request }, { challenge: options.challenge });
    return options;
  }

  /**
   * Uses up the step-up `response` for `action`: it must answer a current step-up challenge issued to this admin
   * for this very action, be signed by one of their own passkeys, with user verification. A stolen session
   * cookie alone cannot pass. The challenge is used up even when the rest is refused. Returns the passkey that
   * confirmed: the action must still be written while that passkey is active (lockActivePasskey), or a passkey
   * removed meanwhile (a stolen one) could still add a passkey of its holder's or new recovery codes.
   */
  private async consumeStepUp(admin: AdminRecord, action: StepUpAction, response: unknown, passkeyId?: string): Promise<string> {
    if (response === undefined) {
      throw new ApiError('UNAUTHENTICATED', `this action needs a fresh passkey confirmation: send \`stepUp\`, your passkey's answer to POST /api/v1/me/step-up/options {"action":"${action}"}`);
    }
    const challenge = challengeOfResponse(response);
    const data = challenge ? (await this.challenges.consume(challenge, 'step-up'))?.data : null;
    if (!challenge || !data || data.adminId !== admin.id) {
      throw new ApiError(
        'UNAUTHENTICATED',
        'this action needs a fresh passkey confirmation: the step-up answers no current challenge of yours (used, expired or unknown); get one at POST /api/v1/me/step-up/options',
      );
    }
    if (data.action !== action) {
      throw new ApiError('UNAUTHENTICATED', `that passkey confirmation was made for ${String(data.action)}, not ${action}; confirm this action with a new one`);
    }
    if (passkeyId !== undefined && data.passkeyId !== passkeyId) {
      throw new ApiError('UNAUTHENTICATED', 'that passkey confirmation was made to remove another passkey; confirm this removal with a new one');
    }
    return (await this.verifyAssertionOf(response, challenge, admin.id)).passkeyId;
  }

  /** Refuses the action of a step-up whose passkey was removed since it confirmed; call it in the action's transaction. */
  private async requireConfirmingPasskey(admin: AdminRecord, confirmedBy: unknown, manager: EntityManager): Promise<void> {
    if (typeof confirmedBy !== 'string' || !(await this.repository.lockActivePasskey(admin.id, confirmedBy, manager))) {
      throw removedPasskeyError();
    }
  }

  /** Registration options for another passkey, given a step-up for `add-passkey` (one step-up, one registration). */
  async addPasskeyOptions(admin: AdminRecord, stepUp: unknown): Promise<object & { challenge: string }> {
    const confirmedBy = await this.consumeStepUp(admin, 'add-passkey', stepUp);
    const options = await this.webauthn.registrationOptions({
      userId: admin.webauthnUserId,
      userName: admin.name,
      displayName: admin.name,
      excludeCredentialIds: (await this.repository.listPasskeys(admin.id)).map((p) => p.credentialId),
    });
    await this.challenges.issue('add-passkey', { adminId: admin.id, confirmedBy }, { challenge: options.challenge });
    return options;
  }

  async addPasskey(admin: AdminRecord, response: unknown, name: string, audit?: AuditScope): Promise<PasskeyRecord> {
    const challenge = challengeOfResponse(response);
    const data = challenge ? (await this.challenges.consume(challenge, 'add-passkey'))?.data : null;
    if (!challenge || !data || data.adminId !== admin.id) {
      throw new ApiError('UNAUTHENTICATED', 'the registration answers no current challenge; start again');
    }
    const credential = await this.verifyRegistration(response, challenge);
    const passkey: PasskeyRecord = { ...credential, id: randomUuid(), adminId: admin.id, name, createdAt: this.now(), lastUsedAt: null };
    await this.repository.transaction(async (manager) => {
      await this.requireConfirmingPasskey(admin, data.confirmedBy, manager);
      await this.repository.insertPasskey(passkey, manager);
      await audit?.record(manager, { operation: 'passkeys.add', keyName: null, keyVersion: null });
    });
    return passkey;
  }

  /**
   * A recovery code (used up now) opens a short enrolment for a new passkey of the same administrator. The
   * code is used up in the transaction that issues the enrolment token and writes the redemption's record:
   * a code is never spent without both, nor a token issued for a code still unused.
   */
  async redeemRecoveryCode(adminName: string, code: string, audit?: AuditScope): Promise<{ token: string; expiresAt: Date }> {
    const retryAfter = this.accountLimiter.take(`name:${adminName}`);
    if (retryAfter > 0) throw new RateLimitedError(retryAfter);
    return this.recoveryGate.run(() => this.checkRecoveryCode(adminName, code, audit));
  }

  private async checkRecoveryCode(adminName: string, code: string, audit?: AuditScope): Promise<{ token: string; expiresAt: Date }> {
    const admin = await this.repository.findAdminByName(adminName);
    const normalised = normaliseRecoveryCode(code);
    const candidates = admin ? await this.repository.unusedRecoveryCodes(admin.id) : [];
    // A refusal always costs RECOVERY_CODES Argon2 checks (the codes there are, then decoys), whether the name is
    // unknown, has ten unused codes or one: its timing does not tell which administrators exist, nor how many
    // codes one has left. A match returns early, which tells the holder of the code nothing new.
    for (let decoys = RECOVERY_CODES - candidates.length; decoys > 0; decoys -= 1) await verifySecret(await timingDecoy(), normalised);
    for (const candidate of candidates) {
      if (!admin || !(await verifySecret(candidate.codeHash, normalised))) continue;
      const { token, value } = await this.newEnrolmentToken({ kind: 'recovery', role: admin.role, name: null, adminId: admin.id, createdBy: null }, RECOVERY_ENROLMENT_TTL_MS);
      const redeemed = await this.repository.transaction(async (manager) => {
        if (!(await this.repository.useRecoveryCode(candidate.id, token.createdAt, manager))) return false;
        await this.repository.insertEnrolmentToken(token, manager);
        // By the administrator whose code it is: no one is signed in, and only they hold their codes.
        await audit?.record(manager, { operation: 'admin.recovery', keyName: null, keyVersion: null, actor: `admin:${admin.id}` });
        return true;
      });
      if (redeemed) return { token: value, expiresAt: token.expiresAt };
    }
    throw new ApiError('UNAUTHENTICATED', 'that name and recovery code do not match an unused code');
  }

  /** Renames one of the administrator's own passkeys; the rename and its record commit together. */
  async renamePasskey(adminId: string, passkeyId: string, name: string, audit?: AuditScope): Promise<void> {
    const record = recordIn(audit, { operation: 'passkeys.rename', keyName: null, keyVersion: null });
    if (!/^[0-9a-f-]{36}$/.test(passkeyId) || !(await this.repository.renamePasskey(adminId, passkeyId, name, record))) {
      throw new ApiError('NOT_FOUND', 'no such passkey of yours');
    }
  }

  /**
   * Removes one of an administrator's passkeys (never the last): it stops signing in and approving at once,
   * and the administrator's sessions end, but `keepSessionId`. Approvals it signed stay on record.
   */
  async removePasskey(adminId: string, passkeyId: string, keepSessionId: string | null, audit?: AuditScope, confirmedBy?: string): Promise<void> {
    const record = recordIn(audit, { operation: 'passkeys.remove', keyName: null, keyVersion: null });
    const outcome = /^[0-9a-f-]{36}$/.test(passkeyId) ? await this.repository.removePasskey(adminId, passkeyId, this.now(), keepSessionId, record, confirmedBy) : 'not-found';
    if (outcome === 'not-found') throw new ApiError('NOT_FOUND', 'no such passkey');
    if (outcome === 'unconfirmed') throw removedPasskeyError();
    if (outcome === 'last') throw new ApiError('INVALID_STATE', 'that is the last passkey of this administrator; add another before removing it');
  }

  /** Removes one of one's own passkeys (never the last), given a step-up for `remove-passkey`. */
  async removeOwnPasskey(admin: AdminRecord, passkeyId: string, stepUp: unknown, keepSessionId: string, audit?: AuditScope): Promise<void> {
    const confirmedBy = await this.consumeStepUp(admin, 'remove-passkey', stepUp, passkeyId);
    await this.removePasskey(admin.id, passkeyId, keepSessionId, audit, confirmedBy);
  }

  /** Replaces every recovery code of the admin (the new ones are returned, once), given a step-up for `recovery-codes`. */
  async regenerateRecoveryCodes(admin: AdminRecord, stepUp: unknown, audit?: AuditScope): Promise<string[]> {
    const confirmedBy = await this.consumeStepUp(admin, 'recovery-codes', stepUp);
    const codes = generateRecoveryCodes(RECOVERY_CODES);
    const hashes = await Promise.all(codes.map((code) => hashSecret(normaliseRecoveryCode(code))));
    await this.repository.transaction(async (manager) => {
      await this.requireConfirmingPasskey(admin, confirmedBy, manager);
      await this.repository.replaceRecoveryCodes(admin.id, hashes, this.now(), manager);
      await audit?.record(manager, { operation: 'admin.recovery-codes', keyName: null, keyVersion: null });
    });
    return codes;
  }

  private async issueEnrolmentToken(
    token: Omit<EnrolmentTokenRecord, 'id' | 'secretHash' | 'expiresAt' | 'usedAt'>,
    ttlMs: number,
    alsoInTransaction?: (manager: EntityManager) => Promise<void>,
  ): Promise<string> {
    const issued = await this.newEnrolmentToken(token, ttlMs);
    await this.repository.transaction(async (manager) => {
      await this.repository.insertEnrolmentToken(issued.token, manager);
      await alsoInTransaction?.(manager);
    });
    return issued.value;
  }

  /** A token and the row that stores it (hashed before any transaction: Argon2 takes tens of milliseconds). */
  private async newEnrolmentToken(
    token: Omit<EnrolmentTokenRecord, 'id' | 'secretHash' | 'expiresAt' | 'usedAt'>,
    ttlMs: number,
  ): Promise<{ token: EnrolmentTokenRecord & { createdAt: Date }; value: string }> {
    const { id, secret, token: value } = makeLookupToken();
    const now = this.now();
    return {
      token: { ...token, id, secretHash: await hashSecret(secret), createdAt: now, expiresAt: new Date(now.getTime() + ttlMs), usedAt: null },
      value,
    };
  }

  private async checkEnrolmentToken(token: string): Promise<EnrolmentTokenRecord> {
    const parts = splitToken(token);
    const record = parts ? await this.repository.findEnrolmentToken(parts.id) : null;
    if (!parts || !record || !(await verifySecret(record.secretHash, parts.secret))) throw invalidToken();
    if (record.usedAt) throw new ApiError('UNAUTHENTICATED', 'this link was already used');
    if (record.expiresAt.getTime() <= this.now().getTime()) throw new ApiError('UNAUTHENTICATED', 'this link has expired; ask for a new one');
    return record;
  }

  private async verifyRegistration(response: unknown, expectedChallenge: string) {
    try {
      const verified = await this.webauthn.verifyRegistration({ response, expectedChallenge });
      return {
        credentialId: verified.credentialId,
        publicKey: Buffer.from(verified.publicKey),
        counter: verified.counter,
        transports: verified.transports ?? [],
      };
    } catch (error) {
      throw webauthnRefusal(error);
    }
  }
}

function invalidToken(): ApiError {
  return new ApiError('UNAUTHENTICATED', 'this link is not valid');
}

function webauthnRefusal(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof WebAuthnError) return new ApiError('UNAUTHENTICATED', `passkey refused: ${error.message}`);
  return new ApiError('UNAUTHENTICATED', 'passkey refused: the response could not be verified');
}

/** Names are how administrators recognise each other (approvals, the audit trail) and how recovery finds one. */
function nameTaken(name: string): ApiError {
  return new ApiError('INVALID_STATE', `an administrator named ${JSON.stringify(name)} already exists; choose another name`);
}
