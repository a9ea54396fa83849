import { useState } from 'react';
import type { AdminView, OperationListView, PendingOperationView } from '@keyhold/contracts';
import { api } from './api';
import { MAX_QUORUM } from './limits';
import { formatDate, isPast } from './format';
import { approveOperation, describeOperation, markInterrupted, operationPath, outcomeOf, requestOperation, useAdminNames } from './operations';
import { Card, ReadOnlyNote, Status, useAction, useResource } from './ui';

// The Approvals screen: operations waiting for approval, those running (or left running by a crash), those decided,
// and the quorum.

type Section = 'waiting' | 'running' | 'decided';
const sectionOf = (operation: PendingOperationView): Section =>
  operation.status === 'pending' ? 'waiting' : operation.status === 'executing' ? 'running' : 'decided';

export function ApprovalsPage({ me, canApprove }: { me: AdminView; canApprove: boolean }) {
  const { data, setData, progress: loading, reload } = useResource<OperationListView>('/api/v1/operations', 'operations');
  const nameOf = useAdminNames();
  const highlighted = new URLSearchParams(location.search).get('operation');
  const [showDecided, setShowDecided] = useState(false);
  // An operation acted on here stays where it was, with its result, until the page is left.
  const [actedOn, setActedOn] = useState<ReadonlyMap<string, Section>>(new Map());
  const operations = data?.operations ?? [];
  const shownIn = (operation: PendingOperationView) => actedOn.get(operation.id) ?? sectionOf(operation);
  const pending = operations.filter((operation) => shownIn(operation) === 'waiting');
  const running = operations.filter((operation) => shownIn(operation) === 'running');
  const decided = operations.filter((operation) => shownIn(operation) === 'decided');
  const waiting = operations.filter((operation) => operation.status === 'pending').length;
  const replace = (updated: PendingOperationView) => {
    const before = operations.find((operation) => operation.id === updated.id);
    setActedOn((current) => new Map(current).set(updated.id, current.get(updated.id) ?? (before ? sectionOf(before) : 'waiting')));
    setData((current) => (current ? { ...current, operations: current.operations.map((operation) => (operation.id === updated.id ? updated : operation)) } : current));
  };

  return (
    <main className="page">
      <div className="page-title">
        <h1>Approvals</h1>
        <button onClick={reload}>Refresh</button>
      </div>
      {!canApprove ? <ReadOnlyNote>Only admins request, approve or reject sensitive operations: you can follow them here.</ReadOnlyNote> : null}
      <p className="muted">
        Sensitive operations run once {data ? <strong data-testid="quorum">{data.quorum}</strong> : 'enough'} approval{data?.quorum === 1 ? '' : 's'} from
        distinct admins are in, each a passkey signature over that exact operation. The requester approves first.
      </p>
      <Status progress={loading} />
      <Card title={`Waiting for approval (${waiting})`} testId="pending-operations">
        {data && pending.length === 0 ? <p className="empty">Nothing is waiting for approval.</p> : null}
        {pending.map((operation) => (
          <OperationCard key={operation.id} operation={operation} me={me} canApprove={canApprove} nameOf={nameOf} highlighted={operation.id === highlighted} onChange={replace} />
        ))}
      </Card>
      {running.length > 0 ? (
        <Card title={`Running (${running.length})`} testId="running-operations">
          <p className="muted small">
            Approved operations run at once and take seconds. One still running minutes later was cut short (the server stopped
            during its run): it will not run again, and an admin can mark it interrupted.
          </p>
          {running.map((operation) => (
            <OperationCard key={operation.id} operation={operation} me={me} canApprove={canApprove} nameOf={nameOf} highlighted={operation.id === highlighted} onChange={replace} />
          ))}
        </Card>
      ) : null}
      {canApprove && data ? <QuorumForm quorum={data.quorum} onRequested={reload} /> : null}
      <Card
        title={`Decided (${decided.length})`}
        actions={
          decided.length > 0 ? (
            <button onClick={() => setShowDecided((open) => !open)} aria-expanded={showDecided}>
              {showDecided ? 'Hide' : 'Show'}
            </button>
          ) : null
        }
        testId="decided-operations"
      >
        {showDecided || decided.some((operation) => operation.id === highlighted)
          ? decided.map((operation) => (
              <OperationCard key={operation.id} operation={operation} me={me} canApprove={false} nameOf={nameOf} highlighted={operation.id === highlighted} onChange={replace} />
            ))
          : <p className="muted small">Executed, failed, interrupted, rejected and expired operations, newest first.</p>}
      </Card>
    </main>
  );
}

function OperationCard({
  operation,
  me,
  canApprove,
  nameOf,
  highlighted,
  onChange,
}: {
  operation: PendingOperationView;
  me: AdminView;
  canApprove: boolean;
  nameOf: (id: string) => string;
  highlighted: boolean;
  onChange: (operation: PendingOperationView) => void;
}) {
  const { progress, run, busy } = useAction();
  const approvedByMe = operation.approvals.some((approval) => approval.adminId === me.id);
  const requesterFirst = operation.approvals.length === 0 && operation.requestedBy !== me.id;
  const act = async (busyText: string, work: () => Promise<PendingOperationView>) => {
    const updated = await run(busyText, work, outcomeOf);
    if (updated) onChange(updated);
  };
  return (
    <article className={`operation${highlighted ? ' highlighted' : ''}`} data-operation={operation.id} data-status={operation.status} aria-label={`Operation ${operation.operation.kind}`}>
      <header className="operation-header">
        <p className="operation-what">{describeOperation(operation.operation, nameOf)}</p>
        <span className={`badge badge-op-${operation.status}`}>{operation.status}</span>
      </header>
      <dl className="details compact">
        <dt>Asked by</dt>
        <dd>
          {nameOf(operation.requestedBy)} on {formatDate(operation.createdAt)}
        </dd>
        <dt>Approved by</dt>
        <dd data-testid="approvers">
          {operation.approvals.length === 0
            ? 'nobody yet'
            : operation.approvals.map((approval) => `${nameOf(approval.adminId)} (${formatDate(approval.approvedAt)})`).join(', ')}{' '}
          <span className="muted">
            — {operation.approvals.length} of {operation.requiredApprovals} needed
          </span>
        </dd>
        {operation.claimedAt ? (
          <>
            <dt>Started</dt>
            <dd>{formatDate(operation.claimedAt)}</dd>
          </>
        ) : null}
        <dt>{operation.status === 'pending' ? 'Expires' : 'Result'}</dt>
        <dd data-testid="outcome">{operation.status === 'pending' ? formatDate(operation.expiresAt) : outcomeOf(operation)}</dd>
      </dl>
      <details>
        <summary>Exact operation signed</summary>
        <pre className="operation-json">{JSON.stringify(operation.operation, null, 2)}</pre>
        <p className="muted small">
          Challenge <code className="break">{operation.challenge}</code>
        </p>
      </details>
      {canApprove && operation.status === 'pending' ? (
        <div className="form-actions">
          <button
            className="primary"
            disabled={busy || approvedByMe || requesterFirst}
            onClick={() => void act('Waiting for your passkey: it signs this operation…', () => approveOperation(operation.id))}
          >
            {approvedByMe ? 'You approved this' : 'Approve with passkey'}
          </button>
          <button className="danger-outline" disabled={busy} onClick={() => void act('Rejecting…', () => api<PendingOperationView>('POST', `${operationPath(operation.id)}/reject`))}>
            Reject
          </button>
          {requesterFirst ? <span className="muted small">The requester approves first.</span> : null}
        </div>
      ) : null}
      {canApprove && operation.status === 'executing' ? (
        isPast(operation.interruptibleAt) ? (
          <div className="form-actions">
            <button className="danger-outline" disabled={busy} onClick={() => void act('Marking it interrupted…', () => markInterrupted(operation.id))}>
              Mark interrupted
            </button>
            <span className="muted small">
              It started {formatDate(operation.claimedAt)} and never finished. Marking it closes it for good; it will not run again. Check
              afterwards whether it took effect, and request it again if needed.
            </span>
          </div>
        ) : (
          <p className="muted small">
            If it is still running at {formatDate(operation.interruptibleAt)}, it was interrupted, and you can mark it so here.
          </p>
        )
      ) : null}
      <Status progress={progress} />
    </article>
  );
}

function QuorumForm({ quorum, onRequested }: { quorum: number; onRequested: () => void }) {
  const [value, setValue] = useState(String(quorum));
  const { progress, run, busy } = useAction();
  const approvals = Number(value);
  const valid = Number.isInteger(approvals) && approvals >= 1 && approvals <= MAX_QUORUM && approvals !== quorum;
  return (
    <Card title="Quorum">
      <form
        className="inline-form"
        onSubmit={(event) => {
          event.preventDefault();
          void run(
            'Waiting for your passkey: it signs the request…',
            () => requestOperation({ kind: 'set-quorum', approvals }),
            (operation) => `Quorum of ${approvals}: ${outcomeOf(operation)}`,
          ).then(onRequested);
        }}
      >
        <label>
          Approvals required
          <input name="quorum" type="number" min={1} max={MAX_QUORUM} value={value} onChange={(event) => setValue(event.target.value)} />
        </label>
        <button type="submit" disabled={busy || !valid}>
          Request the change
        </button>
      </form>
      <p className="muted small">Changing the quorum is itself a sensitive operation, approved under the current quorum.</p>
      <Status progress={progress} />
    </Card>
  );
}
