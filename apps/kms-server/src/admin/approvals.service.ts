import { ApiError, type PendingOperationView, type SensitiveOperation } from '@keyhold/contracts';
import { randomToken, randomUuid } from '@keyhold/crypto-core';
import { type WebAuthnCeremonies, challengeForOperation } from '@keyhold/auth';
import type { DataSource, EntityManager } from 'typeorm';
import { toApiError } from '../common/api-error.filter';
import type { KeysService } from '../keys/keys.service';
import type { MasterKeyService } from '../master-key/master-key.service';
import type { AuditPruner } from '../audit/audit-pruner';
import { type AuditScope, recordIn } from '../audit/audit-scope';
import type { SealGeneration } from '../seal/seal-generation';
import { SEAL_CHANNEL, type SealState } from '../seal/seal-state';
import { type AdminRecord, type AdminRepository, removedPasskeyError } from './admin.repository';
import type { AdminAuthService } from './admin-auth.service';


/** Operations that need a fresh passkey assertion from the requester and, with a quorum, from M admins. */
export type { PendingOperationView, SensitiveOperation };

export const OPERATION_TTL_MS = 60 * 60_000;

/**
 * How long an operation must have been `executing` before an admin may mark it `interrupted`. An approved operation
 * runs right after its claim commits, in the approving request, and takes well under a second to a few seconds
 * (one key's versions, one admin, one master-key version; the master key's rewrap runs apart, in the background):
 * five minutes is far beyond any run, so an operation still `executing` then was cut short by a crash or a restart,
 * not slow — and marking it cannot race a run that is still going. It is counted on the server's clock, which made
 * the claim; any skew between instances is small beside it.
 */
export const INTERRUPTED_GRACE_MS = 5 * 60_000;

type AfterCommit = () => Promise<void>;
/** The approving transaction, for an operation made inside it, and what to do once it has committed. */
interface ApprovalTransaction {
  manager: EntityManager;
  afterCommit: AfterCommit[];
}

type Row = Record<string, unknown>;

/** JSON with keys sorted at every level: the same operation always has the same bytes. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}


/**
 * Multi-admin approvals bound to the exact operation. A request is persisted with its canonical form
 * (kind, parameters, requester, expiry and a nonce); its hash is the WebAuthn challenge. Each approval is
 * a user-verified assertion over that challenge by a distinct admin; the requester's own counts as the
 * first. When the quorum is met the operation runs, once, and its result is kept.
 */
export class ApprovalsService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly admins: AdminRepository,
    private readonly auth: AdminAuthService,
    private readonly webauthn: WebAuthnCeremonies,
    private readonly keys: KeysService,
    private readonly now: () => Date,
    private readonly sealState: SealState | null = null,
    private readonly masterKeys: MasterKeyService | null = null,
    private readonly sealGeneration: SealGeneration | null = null,
    private readonly auditPruner: AuditPruner | null = null,
  ) {}

  private auditPrunerService(): AuditPruner {
    if (!this.auditPruner) throw new ApiError('INVALID_STATE', 'the audit trail is off on this server: there is nothing to prune');
    return this.auditPruner;
  }

  private masterKeyService(): MasterKeyService {
    if (!this.masterKeys) throw new ApiError('INVALID_STATE', 'master-key operations are not available on this server');
    return this.masterKeys;
  }

  quorum(): Promise<number> {
    return this.admins.approvalQuorum();
  }

  /** `recordedAs`: the operation name of the request's record, for routes that have their own (the master key's). */
  async request(requester: AdminRecord, operation: SensitiveOperation, audit?: AuditScope, recordedAs = `operations.request.${operation.kind}`) {
    await this.validate(operation);
    const now = this.now();
    const expiresAt = new Date(now.getTime() + OPERATION_TTL_MS);
    const canonical = canonicalJson({ operation, requestedBy: requester.id, expiresAt: expiresAt.toISOString(), nonce: randomToken(16) });
    const challenge = challengeForOperation(canonical);
    const id = randomUuid();
    const required = Math.min(await this.quorum(), (await this.admins.listAdmins()).filter((admin) => admin.role === 'admin').length);
    await this.dataSource.transaction(async (manager) => {
      await manager.query(
        `INSERT INTO keyhold_pending_operations (id, kind, canonical, challenge, requested_by, required_approvals, status, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8)`,
        [id, operation.kind, canonical, challenge, requester.id, Math.max(1, required), now, expiresAt],
      );
      await audit?.record(manager, {
        operation: recordedAs,
        keyName: 'key' in operation ? operation.key : null,
        keyVersion: 'version' in operation ? (operation.version ?? null) : null,
      });
    });
    return { operation: await this.get(id), assertionOptions: await this.assertionOptions(challenge) };
  }

  /** Options for the browser's passkey prompt: the prompt's signature is the approval. */
  async assertionOptions(challenge: string) {
    return this.webauthn.authenticationOptions({ challenge });
  }

  async approve(approver: AdminRecord, id: string, response: unknown, audit?: AuditScope): Promise<PendingOperationView> {
    if (approver.role !== 'admin') throw new ApiError('FORBIDDEN', `the ${approver.role} role may not approve sensitive operations`);
    const pending = await this.get(id);
    if (pending.status !== 'pending') throw new ApiError('INVALID_STATE', `this operation is ${pending.status}`);
    if (Date.parse(pending.expiresAt) <= this.now().getTime()) {
      await this.dataSource.query(`UPDATE keyhold_pending_operations SET status = 'expired', decided_at = $2 WHERE id = $1 AND status = 'pending'`, [id, this.now()]);
      throw new ApiError('INVALID_STATE', 'this operation expired before it was approved; request it again');
    }
    if (pending.approvals.length === 0 && approver.id !== pending.requestedBy) {
      throw new ApiError('INVALID_STATE', 'the requester approves first, with a fresh passkey assertion');
    }
    // The assertion must be over this operation's challenge, by a passkey of the admin who is signed in.
    const signer = await this.auth.verifyAssertionOf(response, pending.challenge);
    if (signer.admin.id !== approver.id) throw new ApiError('FORBIDDEN', 'approve with one of your own passkeys');
    const afterCommit: AfterCommit[] = [];
    // The approval, and when it completes the quorum, the operation's claim (status `executing`), commit with the
    // approval's record before the operation runs: an approval that cannot be recorded runs nothing, and a claimed
    // operation can never be approved, and run, again. A crash while it runs leaves it `executing`, not `pending`.
    const claimed = await this.dataSource.transaction(async (manager) => {
      const [locked] = await manager.query(`SELECT status, expires_at FROM keyhold_pending_operations WHERE id = $1 FOR UPDATE`, [id]);
      if (locked.status !== 'pending') throw new ApiError('INVALID_STATE', `this operation is ${locked.status}`);
      // Checked again under the lock: the assertion's verification took time, and expiry is final.
      if ((locked.expires_at as Date).getTime() <= this.now().getTime()) {
        throw new ApiError('INVALID_STATE', 'this operation expired before it was approved; request it again');
      }
      // A passkey removed since it signed approves nothing: whoever held it may have signed this.
      if (!(await this.admins.lockActivePasskey(approver.id, signer.passkeyId, manager))) {
        throw removedPasskeyError();
      }
      const inserted: Row[] = await manager.query(
        `INSERT INTO keyhold_approvals (operation_id, admin_id, passkey_id, approved_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING RETURNING admin_id`,
        [id, approver.id, signer.passkeyId, this.now()],
      );
      if (inserted.length === 0) throw new ApiError('INVALID_STATE', 'you have already approved this operation');
      // Only approvals of administrators who still hold the admin role count: one demoted or removed since
      // approving no longer speaks for the quorum.
      const [{ count }] = await manager.query(
        `SELECT count(*)::int AS count FROM keyhold_approvals a JOIN keyhold_admins m ON m.id = a.admin_id
          WHERE a.operation_id = $1 AND m.role = 'admin' AND m.removed_at IS NULL`,
        [id],
      );
      let quorum = count >= pending.requiredApprovals;
      if (quorum && pending.operation.kind === 'seal') {
        // The seal is made in this transaction and recorded by the approval's own record.
        const outcome = await this.outcomeOf(() => this.sealWithin({ manager, afterCommit }));
        await this.decide(manager, id, outcome);
        quorum = false;
      } else if (quorum) {
        await manager.query(`UPDATE keyhold_pending_operations SET status = 'executing', claimed_at = $2 WHERE id = $1`, [id, this.now()]);
      }
      // Last: this transaction takes the chain head's lock only now, and holds it only until it commits.
      await audit?.record(manager, { operation: 'operations.approve', keyName: null, keyVersion: null });
      return quorum;
    });
    for (const work of afterCommit) await work();
    if (claimed) {
      const outcome = await this.outcomeOf(() => this.execute(pending.operation, audit));
      await this.decide(this.dataSource.manager, id, outcome);
    }
    return this.get(id);
  }

  /** What an operation came to: `executed` with its result, or `failed` with the refusal in the contract's shape. */
  private async outcomeOf(run: () => Promise<unknown>): Promise<{ status: 'executed' | 'failed'; result: unknown }> {
    try {
      return { status: 'executed', result: (await run()) ?? null };
    } catch (error) {
      const refusal = toApiError(error);
      return { status: 'failed', result: { error: { code: refusal.code, message: refusal.message } } };
    }
  }

  /**
   * Only an operation still open is decided: a run that an admin marked `interrupted` (after the grace period) and that
   * somehow ends later does not reopen it; what it changed has its own audit records.
   */
  private async decide(manager: EntityManager, id: string, outcome: { status: string; result: unknown }): Promise<void> {
    await manager.query(
      `UPDATE keyhold_pending_operations SET status = $2, decided_at = $3, result = $4 WHERE id = $1 AND status IN ('pending', 'executing')`,
      [id, outcome.status, this.now(), JSON.stringify(outcome.result)],
    );
  }

  async reject(admin: AdminRecord, id: string, audit?: AuditScope): Promise<PendingOperationView> {
    if (admin.role !== 'admin') throw new ApiError('FORBIDDEN', `the ${admin.role} role may not reject sensitive operations`);
    await this.dataSource.transaction(async (manager) => {
      const result: [unknown[], number] = await manager.query(
        `UPDATE keyhold_pending_operations SET status = 'rejected', decided_at = $2 WHERE id = $1 AND status = 'pending'`,
        [id, this.now()],
      );
      if (result[1] !== 1) throw new ApiError('INVALID_STATE', 'only a pending operation can be rejected');
      await audit?.record(manager, { operation: 'operations.reject', keyName: null, keyVersion: null });
    });
    return this.get(id);
  }

  /**
   * Closes an operation whose run was cut short (a crash or a restart after its claim left it `executing`), truthfully:
   * `interrupted`, not `executed` or `failed`, since nobody knows how far it went. Only once it has been executing
   * for longer than the grace period. Like a rejection it changes no key state and runs nothing, so it needs no
   * passkey assertion; the mark and its record commit together. The operation never runs again: whoever needs its
   * effect checks what took place (its own audit records) and requests it again.
   */
  async markInterrupted(admin: AdminRecord, id: string, audit?: AuditScope): Promise<PendingOperationView> {
    if (admin.role !== 'admin') throw new ApiError('FORBIDDEN', `the ${admin.role} role may not mark operations interrupted`);
    await this.get(id);
    await this.dataSource.transaction(async (manager) => {
      const [locked]: Row[] = await manager.query(`SELECT status, claimed_at FROM keyhold_pending_operations WHERE id = $1 FOR UPDATE`, [id]);
      if (locked.status !== 'executing') {
        throw new ApiError('INVALID_STATE', `only an operation left executing can be marked interrupted; this one is ${String(locked.status)}`);
      }
      const now = this.now();
      const claimedAt = locked.claimed_at as Date;
      const interruptibleAt = new Date(claimedAt.getTime() + INTERRUPTED_GRACE_MS);
      if (now < interruptibleAt) {
        throw new ApiError(
          'INVALID_STATE',
          `this operation has been executing only since ${claimedAt.toISOString()} and may still be running; ` +
            `it can be marked interrupted from ${interruptibleAt.toISOString()} (${INTERRUPTED_GRACE_MS / 60_000} minutes after its claim)`,
        );
      }
      const result = {
        interrupted: {
          markedBy: admin.id,
          message:
            `interrupted: it was claimed at ${claimedAt.toISOString()} and never finished, so it will not run again; ` +
            'check whether its effect took place (the audit trail records each change it made) and request it again if needed',
        },
      };
      await manager.query(`UPDATE keyhold_pending_operations SET status = 'interrupted', decided_at = $2, result = $3 WHERE id = $1`, [
        id,
        now,
        JSON.stringify(result),
      ]);
      await audit?.record(manager, { operation: 'operations.mark-interrupted', keyName: null, keyVersion: null });
    });
    return this.get(id);
  }

  async list(): Promise<PendingOperationView[]> {
    const rows: Row[] = await this.dataSource.query(`SELECT id FROM keyhold_pending_operations ORDER BY created_at DESC LIMIT 200`);
    return Promise.all(rows.map((row) => this.get(row.id as string)));
  }

  async get(id: string): Promise<PendingOperationView> {
    const rows: Row[] = /^[0-9a-f-]{36}$/.test(id) ? await this.dataSource.query(`SELECT * FROM keyhold_pending_operations WHERE id = $1`, [id]) : [];
    if (!rows[0]) throw new ApiError('NOT_FOUND', 'no such operation');
    const row = rows[0];
    const approvals: Row[] = await this.dataSource.query(
      `SELECT admin_id, approved_at FROM keyhold_approvals WHERE operation_id = $1 ORDER BY approved_at`,
      [id],
    );
    const canonical = JSON.parse(row.canonical as string) as { operation: SensitiveOperation };
    return {
      id,
      operation: canonical.operation,
      requestedBy: row.requested_by as string,
      requiredApprovals: row.required_approvals as number,
      approvals: approvals.map((a) => ({ adminId: a.admin_id as string, approvedAt: (a.approved_at as Date).toISOString() })),
      status: row.status as PendingOperationView['status'],
      createdAt: (row.created_at as Date).toISOString(),
      expiresAt: (row.expires_at as Date).toISOString(),
      claimedAt: row.claimed_at ? (row.claimed_at as Date).toISOString() : null,
      interruptibleAt: row.status === 'executing' ? new Date((row.claimed_at as Date).getTime() + INTERRUPTED_GRACE_MS).toISOString() : null,
      result: row.result ?? null,
      challenge: row.challenge as string,
    };
  }

  private async validate(operation: SensitiveOperation): Promise<void> {
    switch (operation.kind) {
      case 'destroy-key-now':
      case 'destroy-version-now':
        await this.keys.get(operation.key);
        return;
      case 'remove-admin':
        if (!(await this.admins.findAdmin(operation.adminId))) throw new ApiError('NOT_FOUND', 'no such administrator');
        return;
      case 'set-admin-role': {
        const target = await this.admins.findAdmin(operation.adminId);
        if (!target) throw new ApiError('NOT_FOUND', 'no such administrator');
        if (target.role === operation.role) throw new ApiError('INVALID_STATE', `${target.name} is already ${operation.role}`);
        return;
      }
      case 'set-quorum':
        return;
      case 'seal':
        if (!this.sealState) throw new ApiError('INVALID_STATE', 'sealing is not available on this server');
        if (this.sealState.sealed) throw new ApiError('INVALID_STATE', 'Keyhold is already sealed');
        return;
      case 'shorten-destruction-window':
        await this.keys.get(operation.key);
        return;
      case 'rotate-master-key':
        this.masterKeyService();
        if (this.sealState?.sealed) throw new ApiError('SEALED', 'Keyhold is sealed; unseal it before rotating the master key');
        return;
      case 'retire-master-key-version':
        // Refused now if it would be refused later; checked again, under lock, when it runs.
        await this.masterKeyService().checkRetirable(operation.version);
        return;
      case 'prune-audit-records':
        await this.auditPrunerService().checkPrunable(operation.throughSequence);
        return;
      case 'set-audit-retention':
        this.auditPrunerService().checkPolicy(operation.days);
        return;
      case 'remove-passkey':
        if (!(await this.admins.listPasskeys(operation.adminId)).some((passkey) => passkey.id === operation.passkeyId)) {
          throw new ApiError('NOT_FOUND', 'no such passkey of that administrator');
        }
        return;
    }
  }

  /**
   * The approved seal, inside the approval's transaction: every instance on this database seals when it commits
   * (the generation in Postgres, and NOTIFY), and only then; this one at once after the commit, without waiting
   * for its own notification.
   */
  private async sealWithin(approval: ApprovalTransaction): Promise<unknown> {
    const { sealState, sealGeneration } = this;
    if (!sealState) throw new ApiError('INVALID_STATE', 'sealing is not available on this server');
    let generation: string | null = null;
    if (sealGeneration) generation = await sealGeneration.advance(approval.manager);
    else await approval.manager.query('SELECT pg_notify($1, $2)', [SEAL_CHANNEL, 'seal']);
    approval.afterCommit.push(async () => {
      if (generation) sealGeneration?.noticed(generation);
      await sealState.seal();
    });
    return { sealed: true };
  }

  /** Runs an approved operation (not the seal); each change is recorded in its own transaction under the approving request's scope. */
  private async execute(operation: SensitiveOperation, audit: AuditScope | undefined): Promise<unknown> {
    switch (operation.kind) {
      case 'destroy-key-now':
        return this.keys.destroyNow(operation.key, audit);
      case 'destroy-version-now':
        return this.keys.destroyVersionNow(operation.key, operation.version, audit);
      case 'remove-admin': {
        await this.dataSource.transaction(async (manager) => {
          const target = await this.admins.findAdmin(operation.adminId, manager);
          if (target?.role === 'admin') await this.admins.refuseLosingTheLastAdmin(target.id, manager);
          await this.admins.removeAdmin(operation.adminId, this.now(), manager);
          await audit?.record(manager, { operation: 'admins.remove', keyName: null, keyVersion: null });
        });
        return { removed: operation.adminId };
      }
      case 'set-admin-role': {
        await this.dataSource.transaction(async (manager) => {
          const target = await this.admins.findAdmin(operation.adminId, manager);
          if (!target) throw new ApiError('NOT_FOUND', 'no such administrator');
          if (target.role === 'admin' && operation.role !== 'admin') await this.admins.refuseLosingTheLastAdmin(target.id, manager);
          await this.admins.updateAdminRole(target.id, operation.role, this.now(), recordIn(audit, { operation: 'admins.change-role', keyName: null, keyVersion: null }), manager);
        });
        return { adminId: operation.adminId, role: operation.role };
      }
      case 'set-quorum':
        await this.dataSource.transaction(async (manager) => {
          await manager.query(
            `INSERT INTO keyhold_settings (name, value, updated_at) VALUES ('approval_quorum', $1, $2)
             ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`,
            [JSON.stringify(operation.approvals), this.now()],
          );
          await audit?.record(manager, { operation: 'settings.set-quorum', keyName: null, keyVersion: null });
        });
        return { approvals: operation.approvals };
      case 'shorten-destruction-window':
        return this.keys.shortenDestructionWindow(operation.key, operation.version ?? null, new Date(operation.destroyAt), audit);
      case 'seal':
        throw new Error('the seal is made within its approval (sealWithin)');
      case 'rotate-master-key':
        return this.masterKeyService().rotate(audit);
      case 'retire-master-key-version':
        return this.masterKeyService().retire(operation.version, audit);
      case 'prune-audit-records':
        return this.auditPrunerService().prune(operation.throughSequence, audit);
      case 'set-audit-retention':
        return this.auditPrunerService().setPolicy(operation.days, audit);
      case 'remove-passkey': {
        // A lost or stolen passkey: every session of its administrator ends with it.
        await this.auth.removePasskey(operation.adminId, operation.passkeyId, null, audit);
        return { removed: operation.passkeyId };
      }
    }
  }
}
