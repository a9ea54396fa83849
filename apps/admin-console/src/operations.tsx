import type { ReactNode } from 'react';
import type { AdminView, OperationWithAssertionOptions, PendingOperationView, SensitiveOperation } from '@keyhold/contracts';
import { api } from './api';
import { formatDate, isPast } from './format';
import { Link, useResource } from './ui';
import { signWithPasskey } from './webauthn';

// Sensitive operations (destroy now, remove an admin, change the quorum, ...) are requested, then approved: each
// approval is the browser's passkey prompt over a challenge bound to that exact operation. The requester signs first.

export const operationPath = (id: string) => `/api/v1/operations/${encodeURIComponent(id)}`;
export const approvalsLink = (id: string) => `/approvals?operation=${encodeURIComponent(id)}`;

/** Requests a sensitive operation and signs it as its first approval; with a quorum of 1 it runs at once. */
export function requestOperation(operation: SensitiveOperation): Promise<PendingOperationView> {
  return requestOperationAt('/api/v1/operations', operation);
}

/**
 * The same through an endpoint that opens one kind of operation (`POST /api/v1/master-key/rotate`, ...): it answers
 * the pending operation and the passkey prompt's options, like `POST /api/v1/operations`.
 */
export async function requestOperationAt(path: string, body: unknown = {}): Promise<PendingOperationView> {
  const requested = await api<OperationWithAssertionOptions>('POST', path, { body });
  const response = await signWithPasskey(requested.assertionOptions);
  return api<PendingOperationView>('POST', `${operationPath(requested.operation.id)}/approvals`, { body: { response } });
}

/** Approves someone else's request with one's own passkey. */
export async function approveOperation(id: string): Promise<PendingOperationView> {
  const current = await api<OperationWithAssertionOptions>('GET', operationPath(id));
  const response = await signWithPasskey(current.assertionOptions);
  return api<PendingOperationView>('POST', `${operationPath(id)}/approvals`, { body: { response } });
}

/**
 * Closes an operation a crash left `executing`, once past its grace period (`interruptibleAt`): it never runs again.
 * Like a rejection it changes no key state, so no passkey signs it.
 */
export function markInterrupted(id: string): Promise<PendingOperationView> {
  return api<PendingOperationView>('POST', `${operationPath(id)}/mark-interrupted`);
}

/** What a requested operation came to, in one sentence. */
export function outcomeOf(operation: PendingOperationView): string {
  switch (operation.status) {
    case 'executed':
      return 'Approved and done.';
    case 'executing':
      return isPast(operation.interruptibleAt)
        ? 'Approved, but still running long after it started: it was probably interrupted, and will not run again. An admin can mark it interrupted.'
        : 'Approved and running.';
    case 'interrupted':
      return 'Interrupted: it stopped while running and will not run again. Check whether it took effect (the audit trail shows what it changed) and request it again if needed.';
    case 'failed':
      return `Approved, but it failed: ${errorOf(operation.result) ?? 'the server gave no reason'}.`;
    case 'rejected':
      return 'Rejected: it will not run.';
    case 'expired':
      return 'Expired before enough administrators approved it.';
    case 'pending': {
      const missing = operation.requiredApprovals - operation.approvals.length;
      return `Waiting for ${missing} more approval${missing === 1 ? '' : 's'} (${operation.approvals.length} of ${operation.requiredApprovals}).`;
    }
  }
}

function errorOf(result: unknown): string | null {
  const error = (result as { error?: { message?: string } } | null)?.error;
  return error?.message ?? null;
}

/** The operation in words, with the exact parameters it was signed over available below it. */
export function describeOperation(operation: SensitiveOperation, nameOf: (id: string) => string): ReactNode {
  switch (operation.kind) {
    case 'destroy-key-now':
      return (
        <>
          Destroy key <strong>{operation.key}</strong> and all its versions <strong>now</strong>, without waiting out the destruction window
        </>
      );
    case 'destroy-version-now':
      return (
        <>
          Destroy version <strong>v{operation.version}</strong> of key <strong>{operation.key}</strong> <strong>now</strong>
        </>
      );
    case 'shorten-destruction-window':
      return (
        <>
          Bring the destruction of key <strong>{operation.key}</strong>
          {operation.version ? <> version v{operation.version}</> : null} forward to <strong>{formatDate(operation.destroyAt)}</strong>
        </>
      );
    case 'remove-admin':
      return (
        <>
          Remove administrator <strong>{nameOf(operation.adminId)}</strong>
        </>
      );
    case 'set-admin-role':
      return (
        <>
          Make administrator <strong>{nameOf(operation.adminId)}</strong> <strong>{operation.role}</strong>
        </>
      );
    case 'remove-passkey':
      return (
        <>
          Remove a passkey of administrator <strong>{nameOf(operation.adminId)}</strong> (<code>{operation.passkeyId}</code>)
        </>
      );
    case 'set-quorum':
      return (
        <>
          Require <strong>{operation.approvals}</strong> administrator approval{operation.approvals === 1 ? '' : 's'} for sensitive operations
        </>
      );
    case 'seal':
      return <>Seal Keyhold: every instance stops serving keys until it is unsealed</>;
    case 'rotate-master-key':
      return <>Rotate the master key: a new version wraps new material, and everything is rewrapped under it in the background</>;
    case 'retire-master-key-version':
      return (
        <>
          Retire master-key version <strong>v{operation.version}</strong>: its key is deleted (refused while anything still uses it)
        </>
      );
    case 'set-audit-retention':
      return operation.days === null ? (
        <>Stop pruning the audit trail by itself: records are then pruned only by request</>
      ) : (
        <>
          Prune audit records older than <strong>{operation.days} days</strong> by itself, hourly, through the latest checkpoint old enough
        </>
      );
    case 'prune-audit-records':
      return (
        <>
          Prune the audit records through <strong>#{operation.throughSequence}</strong> (a signed checkpoint): they are re-verified, then removed
        </>
      );
  }
}

/** Admins by id, for naming requesters and approvers; a removed admin keeps a short id. */
export function useAdminNames() {
  const { data } = useResource<{ admins: AdminView[] }>('/api/v1/admins', 'administrators');
  const names = new Map((data?.admins ?? []).map((admin) => [admin.id, admin.name]));
  return (id: string) => names.get(id) ?? `a former administrator (${id.slice(0, 8)})`;
}

/** After a request: where it stands and where to follow it. */
export function RequestedOperation({ operation, what }: { operation: PendingOperationView; what?: ReactNode }) {
  return (
    <p
      className={`status ${operation.status === 'executed' ? 'status-ok' : operation.status === 'pending' || operation.status === 'executing' ? 'status-busy' : 'status-error'}`}
      role="status"
      data-testid="requested-operation"
      data-operation={operation.id}
      data-status={operation.status}
    >
      <span>
        {what ? <>{what}: </> : null}
        {outcomeOf(operation)}{' '}
        {operation.status === 'pending' ? (
          <>
            Other administrators approve it under <Link to={approvalsLink(operation.id)}>Approvals</Link>.
          </>
        ) : null}
      </span>
    </p>
  );
}
