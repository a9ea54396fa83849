import type { EntityManager } from 'typeorm';
import type { AuditPlane } from '@keyhold/crypto-core';
import type { AuditTrail } from './audit-trail';

/** A state change to record in the transaction that makes it. */
export interface RecordedChange {
  operation: string;
  keyName: string | null;
  keyVersion: number | null;
  /** Instead of the request's actor: whom the change is by when no one was signed in (an enrolment). */
  actor?: string;
}

/**
 * Who is changing state, for the record written in the same transaction as the change. Services take one
 * and call `record` last inside their transaction: the change and its record commit together or not at all.
 */
export interface AuditScope {
  record(manager: EntityManager, change: RecordedChange): Promise<void>;
}

/** Changes Keyhold makes by itself (the scheduler's rotations and destructions): actor `system:<job>`. */
export class SystemAuditScope implements AuditScope {
  constructor(
    private readonly trail: AuditTrail,
    private readonly actor: string,
    private readonly now: () => Date,
    private readonly plane: AuditPlane = 'system',
  ) {}

  async record(manager: EntityManager, change: RecordedChange): Promise<void> {
    await this.trail.appendInTransaction(manager, [
      {
        time: this.now().toISOString(),
        plane: this.plane,
        actor: this.actor,
        operation: change.operation,
        keyName: change.keyName,
        keyVersion: change.keyVersion,
        outcome: 'success',
        errorCode: null,
        requestId: null,
        sourceAddress: null,
        contextHmac: null,
      },
    ]);
  }
}

/**
 * For repositories that know nothing of auditing: a callback they run last inside their transaction, which
 * writes the change's record (nothing when there is no scope, i.e. audit off).
 */
export function recordIn(audit: AuditScope | undefined, change: RecordedChange): (manager: EntityManager) => Promise<void> {
  return async (manager) => {
    await audit?.record(manager, change);
  };
}
