import { ApiError } from '@keyhold/contracts';
import type { DataSource, EntityManager } from 'typeorm';

export type AdminRole = 'admin' | 'operator' | 'auditor';

export interface AdminRecord {
  id: string;
  name: string;
  role: AdminRole;
  webauthnUserId: string;
  createdAt: Date;
  removedAt: Date | null;
}

export interface PasskeyRecord {
  id: string;
  adminId: string;
  credentialId: string;
  publicKey: Buffer;
  counter: number;
  transports: string[];
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
}

export interface EnrolmentTokenRecord {
  id: string;
  kind: 'setup' | 'invitation' | 'recovery';
  secretHash: string;
  role: AdminRole;
  name: string | null;
  adminId: string | null;
  createdBy: string | null;
  expiresAt: Date;
  usedAt: Date | null;
}

export interface SessionRecord {
  id: string;
  secretHash: string;
  adminId: string;
  createdAt: Date;
  lastSeenAt: Date;
  expiresAt: Date;
  revokedAt: Date | null;
}

type Row = Record<string, unknown>;

const toAdmin = (row: Row): AdminRecord => ({
  id: row.id as string,
  name: row.name as string,
  role: row.role as AdminRole,
  webauthnUserId: row.webauthn_user_id as string,
  createdAt: row.created_at as Date,
  removedAt: (row.removed_at as Date | null) ?? null,
});

const toPasskey = (row: Row): PasskeyRecord => ({
  id: row.id as string,
  adminId: row.admin_id as string,
  credentialId: row.credential_id as string,
  publicKey: row.public_key as Buffer,
  counter: Number(row.counter),
  transports: (row.transports as string[]) ?? [],
  name: row.name as string,
  createdAt: row.created_at as Date,
  lastUsedAt: (row.last_used_at as Date | null) ?? null,
});

const toToken = (row: Row): EnrolmentTokenRecord => ({
  id: row.id as string,
  kind: row.kind as EnrolmentTokenRecord['kind'],
  secretHash: row.secret_hash as string,
  role: row.role as AdminRole,
  name: (row.name as string | null) ?? null,
  adminId: (row.admin_id as string | null) ?? null,
  createdBy: (row.created_by as string | null) ?? null,
  expiresAt: row.expires_at as Date,
  usedAt: (row.used_at as Date | null) ?? null,
});

const toSession = (row: Row): SessionRecord => ({
  id: row.id as string,
  secretHash: row.secret_hash as string,
  adminId: row.admin_id as string,
  createdAt: row.created_at as Date,
  lastSeenAt: row.last_seen_at as Date,
  expiresAt: row.expires_at as Date,
  revokedAt: (row.revoked_at as Date | null) ?? null,
});

/** 401 for what a passkey signed (a session, an approval, a step-up's action) when it was removed before that was written. */
export function removedPasskeyError(): ApiError {
  return new ApiError('UNAUTHENTICATED', 'the passkey that signed this was removed meanwhile; use one you still have');
}

/** Administrators, passkeys, enrolment tokens, recovery codes and sessions in Postgres. */
export class AdminRepository {
  constructor(private readonly dataSource: DataSource) {}

  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.dataSource.transaction(work);
  }

  private q(manager?: EntityManager) {
    return manager ?? this.dataSource.manager;
  }

  async countActiveAdmins(manager?: EntityManager): Promise<number> {
    const [row] = await this.q(manager).query(`SELECT count(*)::int AS n FROM keyhold_admins WHERE removed_at IS NULL`);
    return row.n as number;
  }

  async listAdmins(): Promise<AdminRecord[]> {
    const rows: Row[] = await this.dataSource.query(`SELECT * FROM keyhold_admins WHERE removed_at IS NULL ORDER BY created_at`);
    return rows.map(toAdmin);
  }

  async findAdmin(id: string, manager?: EntityManager): Promise<AdminRecord | null> {
    const rows: Row[] = await this.q(manager).query(`SELECT * FROM keyhold_admins WHERE id = $1 AND removed_at IS NULL`, [id]);
    return rows[0] ? toAdmin(rows[0]) : null;
  }

  async findAdminByName(name: string): Promise<AdminRecord | null> {
    const rows: Row[] = await this.dataSource.query(`SELECT * FROM keyhold_admins WHERE lower(name) = lower($1) AND removed_at IS NULL`, [name]);
    return rows[0] ? toAdmin(rows[0]) : null;
  }

  /** False when an active administrator already has that name (case aside): nothing is inserted. */
  async insertAdmin(admin: AdminRecord, manager: EntityManager): Promise<boolean> {
    const inserted: Row[] = await manager.query(
      `INSERT INTO keyhold_admins (id, name, role, webauthn_user_id, created_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (lower(name)) WHERE removed_at IS NULL DO NOTHING RETURNING id`,
      [admin.id, admin.name, admin.role, admin.webauthnUserId, admin.createdAt],
    );
    return inserted.length === 1;
  }

  async isAdminNameTaken(name: string): Promise<boolean> {
    const rows: Row[] = await this.dataSource.query(`SELECT 1 FROM keyhold_admins WHERE lower(name) = lower($1) AND removed_at IS NULL`, [name]);
    return rows.length > 0;
  }

  /** The approvals a sensitive operation needs (the `set-quorum` operation's setting; 1 until one is set). */
  async approvalQuorum(manager?: EntityManager): Promise<number> {
    const rows: Row[] = await this.q(manager).query(`SELECT value FROM keyhold_settings WHERE name = 'approval_quorum'`);
    return rows[0] ? Number(rows[0].value) : 1;
  }

  /**
   * `alsoInTransaction` runs last in the change's transaction (its audit record). An admin who loses the role
   * loses the invitations they made and nobody used yet: the power to hand out accounts goes with the role.
   */
  async updateAdminRole(id: string, role: AdminRole, at: Date, alsoInTransaction?: (manager: EntityManager) => Promise<void>, manager?: EntityManager): Promise<void> {
    const change = async (inTransaction: EntityManager) => {
      await inTransaction.query(`UPDATE keyhold_admins SET role = $2 WHERE id = $1 AND removed_at IS NULL`, [id, role]);
      if (role !== 'admin') await this.expireInvitationsBy(id, at, inTransaction);
      await alsoInTransaction?.(inTransaction);
    };
    await (manager ? change(manager) : this.dataSource.transaction(change));
  }

  /**
   * Inside the change's transaction: refuses to let `leaving` stop being an admin (demoted or removed) when no
   * other admin is left. The other admins' rows stay locked until it commits, so two such changes cannot each
   * count on the other admin.
   */
  async refuseLosingTheLastAdmin(leaving: string, manager: EntityManager): Promise<void> {
    const others: Row[] = await manager.query(`SELECT id FROM keyhold_admins WHERE role = 'admin' AND removed_at IS NULL AND id <> $1 FOR UPDATE`, [leaving]);
    if (others.length === 0) throw new ApiError('INVALID_STATE', 'this is the last admin: make someone else admin first');
  }

  /** Sessions end, and the invitations the administrator made that nobody used yet stop working. */
  async removeAdmin(id: string, at: Date, manager?: EntityManager): Promise<void> {
    await this.q(manager).query(`UPDATE keyhold_admins SET removed_at = $2 WHERE id = $1`, [id, at]);
    await this.q(manager).query(`UPDATE keyhold_admin_sessions SET revoked_at = $2 WHERE admin_id = $1 AND revoked_at IS NULL`, [id, at]);
    await this.expireInvitationsBy(id, at, manager);
  }

  private async expireInvitationsBy(adminId: string, at: Date, manager?: EntityManager): Promise<void> {
    await this.q(manager).query(
      `UPDATE keyhold_enrolment_tokens SET expires_at = $2 WHERE created_by = $1 AND kind = 'invitation' AND used_at IS NULL AND expires_at > $2`,
      [adminId, at],
    );
  }

  async insertPasskey(passkey: PasskeyRecord, manager?: EntityManager): Promise<void> {
    await this.q(manager).query(
      `INSERT INTO keyhold_passkeys (id, admin_id, credential_id, public_key, counter, transports, name, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [passkey.id, passkey.adminId, passkey.credentialId, passkey.publicKey, passkey.counter, passkey.transports, passkey.name, passkey.createdAt],
    );
  }

  async findPasskeyByCredentialId(credentialId: string): Promise<PasskeyRecord | null> {
    const rows: Row[] = await this.dataSource.query(
      `SELECT p.* FROM keyhold_passkeys p JOIN keyhold_admins a ON a.id = p.admin_id
        WHERE p.credential_id = $1 AND p.removed_at IS NULL AND a.removed_at IS NULL`,
      [credentialId],
    );
    return rows[0] ? toPasskey(rows[0]) : null;
  }

  async listPasskeys(adminId: string): Promise<PasskeyRecord[]> {
    const rows: Row[] = await this.dataSource.query(`SELECT * FROM keyhold_passkeys WHERE admin_id = $1 AND removed_at IS NULL ORDER BY created_at`, [adminId]);
    return rows.map(toPasskey);
  }

  /**
   * Moves the counter forward only if it still is what we read: two sign-ins racing cannot both pass. False too
   * when the passkey was removed since it was read: its use is over.
   */
  async recordPasskeyUse(id: string, expectedCounter: number, newCounter: number, at: Date): Promise<boolean> {
    const result: [unknown[], number] = await this.dataSource.query(
      `UPDATE keyhold_passkeys SET counter = $3, last_used_at = $4 WHERE id = $1 AND counter = $2 AND removed_at IS NULL`,
      [id, expectedCounter, newCounter, at],
    );
    return result[1] === 1;
  }

  /**
   * True when the passkey is still active, and then it stays so until `manager`'s transaction ends: what a passkey
   * signed (a session, an approval) is written under this lock, so a removal either commits first, and this sees
   * it, or waits for it, and then sees (and revokes) what it signed. The admin's row is taken first, in the order
   * removePasskey takes both: two orders would deadlock.
   */
  async lockActivePasskey(adminId: string, passkeyId: string, manager: EntityManager): Promise<boolean> {
    await manager.query(`SELECT id FROM keyhold_admins WHERE id = $1 FOR KEY SHARE`, [adminId]);
    const rows: Row[] = await manager.query(
      `SELECT id FROM keyhold_passkeys WHERE id = $1 AND admin_id = $2 AND removed_at IS NULL FOR SHARE`,
      [passkeyId, adminId],
    );
    return rows.length === 1;
  }

  async recordCounterRegression(id: string): Promise<void> {
    await this.dataSource.query(`UPDATE keyhold_passkeys SET counter_regressions = counter_regressions + 1 WHERE id = $1`, [id]);
  }

  /** False when the admin has no such passkey; `alsoInTransaction` runs last, only after a rename. */
  async renamePasskey(adminId: string, id: string, name: string, alsoInTransaction?: (manager: EntityManager) => Promise<void>): Promise<boolean> {
    return this.dataSource.transaction(async (manager) => {
      const result: [unknown[], number] = await manager.query(
        `UPDATE keyhold_passkeys SET name = $3 WHERE id = $2 AND admin_id = $1 AND removed_at IS NULL`,
        [adminId, id, name],
      );
      if (result[1] !== 1) return false;
      await alsoInTransaction?.(manager);
      return true;
    });
  }

  /**
   * Removes a passkey unless it is the admin's last (checked under a lock on the admin's row): it never signs in
   * or approves again. The row stays, marked, because approvals it signed keep a reference to it. Every session
   * of that admin ends, but `keepSessionId` (the owner removing it from a session they keep): whoever held the
   * passkey may have signed in with it.
   */
  async removePasskey(
    adminId: string,
    id: string,
    at: Date,
    keepSessionId: string | null,
    alsoInTransaction?: (manager: EntityManager) => Promise<void>,
    confirmedBy?: string,
  ): Promise<'removed' | 'not-found' | 'last' | 'unconfirmed'> {
    return this.dataSource.transaction(async (manager) => {
      await manager.query(`SELECT id FROM keyhold_admins WHERE id = $1 FOR UPDATE`, [adminId]);
      const rows: Row[] = await manager.query(`SELECT id FROM keyhold_passkeys WHERE admin_id = $1 AND removed_at IS NULL`, [adminId]);
      if (!rows.some((row) => row.id === id)) return 'not-found';
      // The passkey that confirmed this removal must still be active (removals of one admin are serialised by the lock above).
      if (confirmedBy !== undefined && !rows.some((row) => row.id === confirmedBy)) return 'unconfirmed';
      if (rows.length <= 1) return 'last';
      // The update waits for a sign-in or approval holding this passkey (lockActivePasskey); the revocation, a
      // later statement, then sees the session it opened.
      await manager.query(`UPDATE keyhold_passkeys SET removed_at = $2 WHERE id = $1`, [id, at]);
      await manager.query(
        `UPDATE keyhold_admin_sessions SET revoked_at = $2 WHERE admin_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $3`,
        [adminId, at, keepSessionId],
      );
      await alsoInTransaction?.(manager);
      return 'removed';
    });
  }

  async insertEnrolmentToken(token: EnrolmentTokenRecord & { createdAt: Date }, manager: EntityManager): Promise<void> {
    await manager.query(
      `INSERT INTO keyhold_enrolment_tokens (id, kind, secret_hash, role, name, admin_id, created_by, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [token.id, token.kind, token.secretHash, token.role, token.name, token.adminId, token.createdBy, token.createdAt, token.expiresAt],
    );
  }

  async findEnrolmentToken(id: string, manager?: EntityManager, lock = false): Promise<EnrolmentTokenRecord | null> {
    const rows: Row[] = await this.q(manager).query(
      `SELECT * FROM keyhold_enrolment_tokens WHERE id = $1 ${lock ? 'FOR UPDATE' : ''}`,
      [id],
    );
    return rows[0] ? toToken(rows[0]) : null;
  }

  /** Invitations nobody used yet that are still valid at `at`, oldest first; never their secret hashes. */
  async listOpenInvitations(at: Date): Promise<Array<Omit<EnrolmentTokenRecord, 'secretHash'> & { createdAt: Date }>> {
    const rows: Row[] = await this.dataSource.query(
      `SELECT id, kind, role, name, admin_id, created_by, created_at, expires_at, used_at FROM keyhold_enrolment_tokens
        WHERE kind = 'invitation' AND used_at IS NULL AND expires_at > $1 ORDER BY created_at, id`,
      [at],
    );
    return rows.map((row) => {
      const { secretHash: _omitted, ...token } = toToken({ ...row, secret_hash: null });
      return { ...token, createdAt: row.created_at as Date };
    });
  }

  /**
   * Expires an invitation nobody used yet at `at`: its link stops working. False when there is no such open
   * invitation (unknown, used, expired or revoked already); `alsoInTransaction` runs last, only after a revocation.
   */
  async revokeInvitation(id: string, at: Date, alsoInTransaction?: (manager: EntityManager) => Promise<void>): Promise<boolean> {
    return this.dataSource.transaction(async (manager) => {
      const result: [unknown[], number] = await manager.query(
        `UPDATE keyhold_enrolment_tokens SET expires_at = $2 WHERE id = $1 AND kind = 'invitation' AND used_at IS NULL AND expires_at > $2`,
        [id, at],
      );
      if (result[1] !== 1) return false;
      await alsoInTransaction?.(manager);
      return true;
    });
  }

  /** Unused setup links stop working: only the link of the latest start without an administrator opens. */
  async expireSetupTokens(at: Date, manager: EntityManager): Promise<void> {
    await manager.query(`UPDATE keyhold_enrolment_tokens SET expires_at = $1 WHERE kind = 'setup' AND used_at IS NULL AND expires_at > $1`, [at]);
  }

  /**
   * Serialises first-admin enrolments until the transaction ends: two setup links redeemed at the same moment
   * would otherwise both see no administrator and both make one.
   */
  async lockFirstAdminEnrolment(manager: EntityManager): Promise<void> {
    await manager.query(`SELECT pg_advisory_xact_lock(hashtext('keyhold:first-admin'))`);
  }

  async markTokenUsed(id: string, adminId: string, at: Date, manager: EntityManager): Promise<void> {
    await manager.query(`UPDATE keyhold_enrolment_tokens SET used_at = $2, used_by = $3 WHERE id = $1`, [id, at, adminId]);
  }

  async replaceRecoveryCodes(adminId: string, hashes: string[], at: Date, manager?: EntityManager): Promise<void> {
    await this.q(manager).query(`DELETE FROM keyhold_recovery_codes WHERE admin_id = $1`, [adminId]);
    for (const hash of hashes) {
      await this.q(manager).query(
        `INSERT INTO keyhold_recovery_codes (id, admin_id, code_hash, created_at) VALUES (gen_random_uuid(), $1, $2, $3)`,
        [adminId, hash, at],
      );
    }
  }

  async unusedRecoveryCodes(adminId: string): Promise<Array<{ id: string; codeHash: string }>> {
    const rows: Row[] = await this.dataSource.query(
      `SELECT id, code_hash FROM keyhold_recovery_codes WHERE admin_id = $1 AND used_at IS NULL`,
      [adminId],
    );
    return rows.map((row) => ({ id: row.id as string, codeHash: row.code_hash as string }));
  }

  /** False when the code was used meanwhile (two redemptions racing with one code: one wins). */
  async useRecoveryCode(id: string, at: Date, manager: EntityManager): Promise<boolean> {
    const result: [unknown[], number] = await manager.query(
      `UPDATE keyhold_recovery_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL`,
      [id, at],
    );
    return result[1] === 1;
  }

  /**
   * False, and nothing written, when `passkeyId`, the passkey the session is opened with, was removed meanwhile.
   * `alsoInTransaction` runs last in the same transaction (the sign-in's audit record).
   */
  async insertSession(
    session: SessionRecord & { sourceAddress: string | null; userAgent: string | null },
    passkeyId: string,
    alsoInTransaction?: (manager: EntityManager) => Promise<void>,
  ): Promise<boolean> {
    return this.dataSource.transaction(async (manager) => {
      if (!(await this.lockActivePasskey(session.adminId, passkeyId, manager))) return false;
      await manager.query(
        `INSERT INTO keyhold_admin_sessions (id, secret_hash, admin_id, created_at, last_seen_at, expires_at, source_address, user_agent)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [session.id, session.secretHash, session.adminId, session.createdAt, session.lastSeenAt, session.expiresAt, session.sourceAddress, session.userAgent],
      );
      await alsoInTransaction?.(manager);
      return true;
    });
  }

  async findSession(id: string): Promise<SessionRecord | null> {
    const rows: Row[] = await this.dataSource.query(`SELECT * FROM keyhold_admin_sessions WHERE id = $1`, [id]);
    return rows[0] ? toSession(rows[0]) : null;
  }

  async touchSession(id: string, at: Date): Promise<void> {
    await this.dataSource.query(`UPDATE keyhold_admin_sessions SET last_seen_at = $2 WHERE id = $1`, [id, at]);
  }

  /** `alsoInTransaction` runs last in the same transaction (the sign-out's audit record). */
  async revokeSession(id: string, at: Date, alsoInTransaction?: (manager: EntityManager) => Promise<void>): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      await manager.query(`UPDATE keyhold_admin_sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`, [id, at]);
      await alsoInTransaction?.(manager);
    });
  }

  /** The number of sessions ended; `alsoInTransaction` runs last in the same transaction (its audit record). */
  async revokeAllSessions(adminId: string, at: Date, alsoInTransaction?: (manager: EntityManager) => Promise<void>): Promise<number> {
    return this.dataSource.transaction(async (manager) => {
      const result: [unknown[], number] = await manager.query(
        `UPDATE keyhold_admin_sessions SET revoked_at = $2 WHERE admin_id = $1 AND revoked_at IS NULL`,
        [adminId, at],
      );
      await alsoInTransaction?.(manager);
      return result[1];
    });
  }
}
