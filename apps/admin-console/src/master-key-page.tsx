import { type ReactNode, useCallback, useEffect, useId, useRef, useState } from 'react';
import type {
  MasterKeyStatusView,
  MasterKeyVersionView,
  OperationListView,
  OperationWithAssertionOptions,
  PendingOperationView,
} from '@keyhold/contracts';
import { api, messageOf } from './api';
import { formatCount, formatDate } from './format';
import { RequestedOperation, approvalsLink, operationPath, requestOperationAt } from './operations';
import { Card, IDLE, Link, type Progress, ReadOnlyNote, Status, useAction } from './ui';

// The master key (docs/master-key.md): its versions, what each still wraps, the background rewrap, rotation and
// retirement. Rotating and retiring are sensitive operations: requested here (the requester's passkey signs first),
// approved by other admins under Approvals. While a request waits or a rewrap runs, the page polls; then it stops,
// and also when all that is left under older versions is rows the rewrap found damaged.

/** While a request waits for approval or this instance rewraps. */
export const POLL_MS = 2_000;
/** While rows are left under an old version but this instance is not rewrapping (another instance may be). */
const SLOW_POLL_MS = 5_000;

const STATUS_PATH = '/api/v1/master-key';

/** The rewrap targets the server names today, in this order; another one shows under its own name. */
const TARGETS: Array<{ name: string; label: string; one: string; many: string }> = [
  { name: 'key-versions', label: 'Key versions', one: 'key version', many: 'key versions' },
  { name: 'certificate-authority', label: 'Service CA', one: 'service CA key', many: 'service CA keys' },
  { name: 'audit-keys', label: 'Audit keys', one: 'audit key', many: 'audit keys' },
];

/** The API's states, in the console's words: the `active` version is the primary one. */
const STATES: Record<MasterKeyVersionView['state'], { label: string; meaning: string }> = {
  active: { label: 'Primary', meaning: 'new material is wrapped and sealed under it' },
  retiring: { label: 'Retiring', meaning: 'still opens what is not rewrapped yet' },
  retired: { label: 'Retired', meaning: 'its key is deleted; nothing may use it' },
};

type MasterKeyOperation = PendingOperationView & { operation: { kind: 'rotate-master-key' } | { kind: 'retire-master-key-version'; version: number } };

const isMasterKeyOperation = (operation: PendingOperationView): operation is MasterKeyOperation =>
  operation.operation.kind === 'rotate-master-key' || operation.operation.kind === 'retire-master-key-version';

const sum = (counts: Record<string, number>) => Object.values(counts).reduce((total, count) => total + count, 0);

function targetNames(status: MasterKeyStatusView): string[] {
  const seen = new Set(status.versions.flatMap((version) => Object.keys(version.references)));
  return [...TARGETS.map((target) => target.name).filter((name) => seen.has(name)), ...[...seen].filter((name) => !TARGETS.some((target) => target.name === name))];
}

function labelOf(name: string): string {
  return TARGETS.find((target) => target.name === name)?.label ?? name;
}

/** "3 key versions, 1 service CA key": what a version still protects. */
function countsInWords(counts: Record<string, number>): string {
  return Object.entries(counts)
    .filter(([, count]) => count > 0)
    .map(([name, count]) => {
      const target = TARGETS.find((known) => known.name === name);
      return `${formatCount(count)} ${target ? (count === 1 ? target.one : target.many) : name}`;
    })
    .join(', ');
}

function operationLabel(operation: MasterKeyOperation): string {
  return operation.operation.kind === 'rotate-master-key' ? 'Rotation' : `Retirement of v${operation.operation.version}`;
}

export function MasterKeyPage({ canAdminister }: { canAdminister: boolean }) {
  const [status, setStatus] = useState<MasterKeyStatusView | null>(null);
  const [quorum, setQuorum] = useState<number | null>(null);
  // Master-key requests waiting when the page opened, or made here; they stay, with their outcome, until the page is left.
  const [requests, setRequests] = useState<MasterKeyOperation[]>([]);
  const [loading, setLoading] = useState<Progress>({ kind: 'busy', text: 'Loading the master key…' });
  const [rotating, setRotating] = useState(false);
  const [polls, setPolls] = useState(0);
  const requestsNow = useRef(requests);
  requestsNow.current = requests;

  /** The waiting requests first, then the status: a request seen executed is then seen in the status too. */
  const refresh = useCallback(async () => {
    try {
      const updated = await Promise.all(
        requestsNow.current.map((request) =>
          request.status === 'pending' ? api<OperationWithAssertionOptions>('GET', operationPath(request.id)).then((answer) => answer.operation as MasterKeyOperation) : request,
        ),
      );
      const current = await api<MasterKeyStatusView>('GET', STATUS_PATH);
      setRequests((shown) => shown.map((request) => updated.find((fresh) => fresh.id === request.id) ?? request));
      setStatus(current);
      setLoading(IDLE);
    } catch (error) {
      setLoading({ kind: 'error', text: messageOf(error) });
    }
  }, []);

  useEffect(() => {
    let live = true;
    Promise.all([api<OperationListView>('GET', '/api/v1/operations'), api<MasterKeyStatusView>('GET', STATUS_PATH)])
      .then(([operations, current]) => {
        if (!live) return;
        setQuorum(operations.quorum);
        setRequests(operations.operations.filter((operation) => operation.status === 'pending').filter(isMasterKeyOperation));
        setStatus(current);
        setLoading(IDLE);
      })
      .catch((error: unknown) => live && setLoading({ kind: 'error', text: messageOf(error) }));
    return () => {
      live = false;
    };
  }, []);

  const waiting = requests.filter((request) => request.status === 'pending');
  const remaining = status ? sum(status.remaining) : 0;
  const running = status?.rewrap.state === 'running';
  // Rows the last pass found damaged never move by themselves: once they are all that is left, polling would go on for ever.
  const onlyDamagedLeft = status ? damagedAreAllThatIsLeft(status) : false;
  const pollEvery = waiting.length > 0 || running ? POLL_MS : remaining > 0 && !onlyDamagedLeft ? SLOW_POLL_MS : null;
  useEffect(() => {
    if (pollEvery === null) return;
    const timer = setTimeout(() => void refresh().finally(() => setPolls((count) => count + 1)), pollEvery);
    return () => clearTimeout(timer);
  }, [pollEvery, polls, refresh]);

  const requested = (operation: PendingOperationView) => {
    if (isMasterKeyOperation(operation)) setRequests((shown) => [operation, ...shown.filter((request) => request.id !== operation.id)]);
    if (operation.status === 'executed') void refresh();
  };
  const pendingRotation = waiting.find((request) => request.operation.kind === 'rotate-master-key') ?? null;

  return (
    <main className="page">
      <div className="page-title">
        <h1>Master key</h1>
        {canAdminister ? (
          <button className="primary" onClick={() => setRotating((open) => !open)} aria-expanded={rotating}>
            Rotate…
          </button>
        ) : null}
      </div>
      {!canAdminister ? <ReadOnlyNote>Only admins rotate the master key or retire its versions: you can follow them here.</ReadOnlyNote> : null}
      <p className="muted">
        The master key wraps the material of every key version, the service CA’s private key and the audit trail’s keys. Rotating it makes a new version
        primary; a background rewrap then moves everything onto it, and an old version can be retired once nothing uses it. Callers’ ciphertexts never
        change. {status ? <>The root of trust is protected by <code>{status.protection}</code>.</> : null}
      </p>
      {rotating && status ? (
        <RotateForm status={status} quorum={quorum} pending={pendingRotation} onRequested={(operation) => {
            setRotating(false);
            requested(operation);
          }} onCancel={() => setRotating(false)} />
      ) : null}
      {requests.map((request) => (
        <RequestedOperation key={request.id} operation={request} what={operationLabel(request)} />
      ))}
      <Status progress={loading} />
      {status ? <RewrapCard status={status} onCheckAgain={() => void refresh()} /> : null}
      {status ? (
        <Card title="Versions" testId="master-key-versions">
          <table className="table responsive">
            <thead>
              <tr>
                <th>Version</th>
                <th>State</th>
                <th>Created</th>
                {targetNames(status).map((name) => (
                  <th key={name} className="num">
                    {labelOf(name)}
                  </th>
                ))}
                {canAdminister ? (
                  <th>
                    <span className="sr-only">Actions</span>
                  </th>
                ) : null}
              </tr>
            </thead>
            <tbody>
              {[...status.versions].reverse().map((version) => (
                <VersionRow
                  key={version.version}
                  version={version}
                  targets={targetNames(status)}
                  canAdminister={canAdminister}
                  pendingRetirement={waiting.find((request) => request.operation.kind === 'retire-master-key-version' && request.operation.version === version.version) ?? null}
                  onRequested={requested}
                />
              ))}
            </tbody>
          </table>
          <ul className="roles muted small">
            {Object.values(STATES).map((state) => (
              <li key={state.label}>
                <strong>{state.label}</strong>: {state.meaning}
              </li>
            ))}
          </ul>
        </Card>
      ) : null}
    </main>
  );
}

/** The last pass finished, and what it left as damaged is all that is still under an older version. */
function damagedAreAllThatIsLeft(status: MasterKeyStatusView): boolean {
  const pass = status.rewrap.lastPass;
  const remaining = sum(status.remaining);
  return status.rewrap.state === 'idle' && remaining > 0 && pass !== null && pass.finishedAt !== null && pass.error === null && pass.damaged >= remaining;
}

/** How far the rewrap is: rows under the primary version out of every row under a live version. */
function RewrapCard({ status, onCheckAgain }: { status: MasterKeyStatusView; onCheckAgain: () => void }) {
  const remaining = sum(status.remaining);
  const total = status.versions.filter((version) => version.state !== 'retired').reduce((all, version) => all + sum(version.references), 0);
  const done = total - remaining;
  const running = status.rewrap.state === 'running';
  const state = remaining === 0 ? 'done' : running ? 'running' : damagedAreAllThatIsLeft(status) ? 'stuck' : 'waiting';
  const onlyVersion = status.versions.length === 1;
  const pass = status.rewrap.lastPass;
  return (
    <Card title="Background rewrap" testId="rewrap">
      <div data-state={state}>
        {state === 'done' ? (
          <p className="status status-ok" role="status" data-testid="rewrap-state">
            {onlyVersion ? `Nothing to rewrap: everything is under v${status.currentVersion}.` : `Done: everything is under v${status.currentVersion}.`}
          </p>
        ) : state === 'stuck' ? (
          <>
            <p className="status status-error" role="status" data-testid="rewrap-state">
              Stopped: {countsInWords(status.remaining)} left under older versions {remaining === 1 ? 'failed its' : 'failed their'} integrity check and cannot
              be rewrapped.
            </p>
            <progress className="rewrap-progress" value={done} max={Math.max(total, 1)} aria-label={`Rewrapped under v${status.currentVersion}`} />
            <p className="muted small">
              {formatCount(done)} of {formatCount(total)} under v{status.currentVersion}. The page no longer follows it: nothing will change until the damaged
              key versions are destroyed (or restored from a backup) and a pass runs again.
            </p>
            <button onClick={onCheckAgain}>Check again</button>
          </>
        ) : (
          <>
            <p className="status status-busy" role="status" data-testid="rewrap-state">
              {running ? <span className="spinner" aria-hidden="true" /> : null}
              {running ? 'Rewrapping' : 'Waiting for the next rewrap pass'}: {formatCount(remaining)} left under older versions ({countsInWords(status.remaining)}).
            </p>
            <progress className="rewrap-progress" value={done} max={Math.max(total, 1)} aria-label={`Rewrapped under v${status.currentVersion}`} />
            <p className="muted small">
              {formatCount(done)} of {formatCount(total)} under v{status.currentVersion}. The page follows it until it is done.
            </p>
          </>
        )}
        {pass ? (
          <p className="muted small" data-testid="rewrap-last-pass">
            Last pass on the instance that answered: started {formatDate(pass.startedAt)}, {pass.finishedAt ? `finished ${formatDate(pass.finishedAt)}` : 'still running'},{' '}
            {formatCount(pass.rewrapped)} rewrapped
            {pass.damaged > 0 ? `, ${formatCount(pass.damaged)} damaged` : ''}.
          </p>
        ) : null}
        {pass && pass.damaged > 0 ? (
          <p className="warning small">
            {pass.damaged === 1
              ? '1 stored secret failed its integrity check and stays under its old version'
              : `${formatCount(pass.damaged)} stored secrets failed their integrity check and stay under their old version`}
            , which therefore cannot be retired until the damaged key versions are destroyed.
          </p>
        ) : null}
        {pass?.error ? (
          <p className="status status-error" role="alert">
            The last pass failed: {pass.error}. The next pass carries on where it stopped.
          </p>
        ) : null}
      </div>
    </Card>
  );
}

function RotateForm({
  status,
  quorum,
  pending,
  onRequested,
  onCancel,
}: {
  status: MasterKeyStatusView;
  quorum: number | null;
  pending: PendingOperationView | null;
  onRequested: (operation: PendingOperationView) => void;
  onCancel: () => void;
}) {
  const { progress, setProgress, run, busy } = useAction();
  const reasonId = useId();
  return (
    <Card title="Rotate the master key" testId="rotate-master-key">
      <p>
        Version <strong>v{status.currentVersion + 1}</strong> becomes primary (the next number; it is decided when the rotation runs): every instance wraps new
        material under it at once, and the background rewrap moves what is stored under v{status.currentVersion} and older onto it.
      </p>
      <p>
        This is a sensitive operation. Your passkey signs the request, which counts as the first approval; it runs once{' '}
        {quorum === null ? 'the quorum of' : <strong>{quorum}</strong>} administrator{quorum === 1 ? '' : 's'} approved it under <Link to="/approvals">Approvals</Link>.
      </p>
      <div className="form-actions">
        <button
          className="primary"
          disabled={busy || pending !== null}
          aria-describedby={pending ? reasonId : undefined}
          onClick={() =>
            void run('Waiting for your passkey: it signs the rotation request…', () => requestOperationAt(`${STATUS_PATH}/rotate`), () => '').then((operation) => {
              if (!operation) return;
              setProgress(IDLE);
              onRequested(operation);
            })
          }
        >
          Request rotation
        </button>
        <button onClick={onCancel}>Cancel</button>
      </div>
      {pending ? (
        <p className="muted small" id={reasonId}>
          A rotation is already waiting for approval: <Link to={approvalsLink(pending.id)}>approve or reject it</Link> first.
        </p>
      ) : null}
      <Status progress={progress} />
    </Card>
  );
}

function VersionRow({
  version,
  targets,
  canAdminister,
  pendingRetirement,
  onRequested,
}: {
  version: MasterKeyVersionView;
  targets: string[];
  canAdminister: boolean;
  pendingRetirement: PendingOperationView | null;
  onRequested: (operation: PendingOperationView) => void;
}) {
  return (
    <tr data-version={version.version} data-state={version.state}>
      <td data-label="Version">
        <strong>v{version.version}</strong>
        {version.version === 1 ? <span className="tag">root of trust</span> : null}
      </td>
      <td data-label="State">
        <span className="cell-stack">
          <span className={`badge badge-mk-${version.state}`} data-testid="version-state">
            {STATES[version.state].label}
          </span>
          {version.retiredAt ? <span className="muted small">{formatDate(version.retiredAt)}</span> : null}
        </span>
      </td>
      <td data-label="Created">{formatDate(version.createdAt)}</td>
      {targets.map((name) => (
        <td key={name} data-label={labelOf(name)} className="num">
          {version.state === 'retired' ? '—' : formatCount(version.references[name] ?? 0)}
        </td>
      ))}
      {canAdminister ? (
        <td data-label="Actions" className="row-actions">
          {version.state === 'retired' ? null : <RetireAction version={version} pending={pendingRetirement} onRequested={onRequested} />}
        </td>
      ) : null}
    </tr>
  );
}

function RetireAction({ version, pending, onRequested }: { version: MasterKeyVersionView; pending: PendingOperationView | null; onRequested: (operation: PendingOperationView) => void }) {
  const { progress, setProgress, run, busy } = useAction();
  const [confirming, setConfirming] = useState(false);
  const reasonId = useId();
  const stillUsed = countsInWords(version.references);
  let reason: ReactNode = null;
  if (version.state === 'active') reason = 'The primary version: rotate first.';
  else if (stillUsed) reason = `Still wraps ${stillUsed}: wait for the rewrap.`;
  if (pending) {
    return (
      <span className="muted small">
        Retirement <Link to={approvalsLink(pending.id)}>waiting for approval</Link>
      </span>
    );
  }
  const retire = async () => {
    setConfirming(false);
    const operation = await run(
      `Waiting for your passkey: it signs the retirement of v${version.version}…`,
      () => requestOperationAt(`${STATUS_PATH}/versions/${version.version}/retire`),
      () => '',
    );
    if (operation) {
      setProgress(IDLE);
      onRequested(operation);
    }
  };
  return (
    <>
      {confirming ? (
        <span className="confirm">
          <button className="danger" onClick={() => void retire()} disabled={busy}>
            Request retirement
          </button>
          <button onClick={() => setConfirming(false)}>Keep</button>
        </span>
      ) : (
        <button onClick={() => setConfirming(true)} disabled={busy || reason !== null} aria-describedby={reason ? reasonId : undefined}>
          Retire…
        </button>
      )}
      {reason ? (
        <span className="muted small retire-reason" id={reasonId} data-testid="retire-reason">
          {reason}
        </span>
      ) : null}
      {confirming ? <span className="muted small retire-reason">Its key is deleted for good.</span> : null}
      <Status progress={progress} />
    </>
  );
}
