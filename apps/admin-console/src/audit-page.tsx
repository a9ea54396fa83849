import { type FormEvent, useCallback, useEffect, useState } from 'react';
import type { AuditCheckpointSigningView, AuditCheckpointsView, AuditPageView, AuditPublicKeyView, AuditRecordView, AuditRetentionView, PendingOperationView } from '@keyhold/contracts';
import { api, apiText, messageOf } from './api';
import { saveTextFile } from './download';
import { formatDate } from './format';
import { RequestedOperation, requestOperationAt } from './operations';
import { Card, IDLE, Link, type Progress, Status, useAction, useResource } from './ui';

const PAGE = 100;
const OUTCOMES = ['', 'success', 'refused', 'error'] as const;

interface Filters {
  from: string;
  to: string;
  actor: string;
  key: string;
  operation: string;
  outcome: string;
  fromSequence: string;
}

const NO_FILTERS: Filters = { from: '', to: '', actor: '', key: '', operation: '', outcome: '', fromSequence: '' };

/** The query string of the filters that are set (datetime-local inputs are read as UTC, as the console shows times). */
function queryOf(filters: Filters): URLSearchParams {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(filters) as Array<[keyof Filters, string]>) {
    const trimmed = value.trim();
    if (!trimmed) continue;
    query.set(name, name === 'from' || name === 'to' ? `${trimmed}:00Z` : trimmed);
  }
  return query;
}

/**
 * The audit trail (auditors and admins): every operation on both planes, refusals included, in sequence order,
 * with filters; the export (JSON Lines, with the signed checkpoints) is what `kmsctl audit verify` checks
 * offline against the public key shown here. Admins also prune old records (retention) through a signed checkpoint.
 */
export function AuditPage({ canAdminister }: { canAdminister: boolean }) {
  const [filters, setFilters] = useState<Filters>(NO_FILTERS);
  const [applied, setApplied] = useState<Filters | null>(null);
  const [records, setRecords] = useState<AuditRecordView[]>([]);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [progress, setProgress] = useState<Progress>({ kind: 'busy', text: 'Loading the audit trail…' });
  const [publicKey, setPublicKey] = useState<AuditPublicKeyView | null>(null);
  const [signing, setSigning] = useState<AuditCheckpointSigningView | null>(null);

  const load = useCallback(async (shown: Filters, cursor: string | null) => {
    try {
      setProgress({ kind: 'busy', text: 'Loading records…' });
      const query = queryOf(shown);
      query.set('limit', String(PAGE));
      if (cursor) query.set('cursor', cursor);
      const page = await api<AuditPageView>('GET', `/api/v1/audit/records?${query.toString()}`);
      setRecords((previous) => (cursor ? [...previous, ...page.records] : page.records));
      setNextCursor(page.nextCursor);
      setApplied(shown);
      setProgress(IDLE);
    } catch (error) {
      setProgress({ kind: 'error', text: messageOf(error) });
    }
  }, []);

  // The latest records first: start a page before the chain head.
  useEffect(() => {
    void (async () => {
      try {
        const { head, signing: status } = await api<AuditCheckpointsView>('GET', '/api/v1/audit/checkpoints');
        setSigning(status);
        const latest = { ...NO_FILTERS, fromSequence: String(Math.max(1, head.sequence - PAGE + 1)) };
        setFilters(latest);
        await load(latest, null);
      } catch (error) {
        setProgress({ kind: 'error', text: messageOf(error) });
      }
      api<AuditPublicKeyView>('GET', '/api/v1/audit/public-key').then(setPublicKey, () => setPublicKey(null));
    })();
  }, [load]);

  // Read first, then saved: a refusal (another export running, too many records) shows as its message here,
  // not as a failed download.
  const exportLines = async (shown: Filters) => {
    try {
      setProgress({ kind: 'busy', text: 'Building the export…' });
      const text = await apiText(`/api/v1/audit/export?${queryOf(shown).toString()}`);
      saveTextFile('keyhold-audit.jsonl', text, 'application/x-ndjson');
      setProgress(IDLE);
    } catch (error) {
      setProgress({ kind: 'error', text: messageOf(error) });
    }
  };

  const apply = (event: FormEvent) => {
    event.preventDefault();
    void load(filters, null);
  };
  const field = (name: keyof Filters) => ({
    name,
    value: filters[name],
    onChange: (event: { target: { value: string } }) => setFilters((current) => ({ ...current, [name]: event.target.value })),
  });

  return (
    <main className="page">
      <div className="page-title">
        <h1>Audit</h1>
        {applied ? (
          <button onClick={() => void exportLines(applied)} disabled={progress.kind === 'busy'}>
            Export JSON Lines
          </button>
        ) : null}
      </div>
      <Card title="Filters">
        <form className="filters" onSubmit={apply} data-testid="audit-filters">
          <label>
            From (UTC)
            <input type="datetime-local" {...field('from')} />
          </label>
          <label>
            To (UTC)
            <input type="datetime-local" {...field('to')} />
          </label>
          <label>
            Actor
            <input {...field('actor')} placeholder="spiffe://… or an admin id" maxLength={512} />
          </label>
          <label>
            Key
            <input {...field('key')} placeholder="key name" maxLength={64} />
          </label>
          <label>
            Operation
            <input {...field('operation')} placeholder="encrypt, keys.rotate…" maxLength={64} />
          </label>
          <label>
            Outcome
            <select {...field('outcome')}>
              {OUTCOMES.map((outcome) => (
                <option key={outcome} value={outcome}>
                  {outcome || 'any'}
                </option>
              ))}
            </select>
          </label>
          <label>
            From sequence
            <input inputMode="numeric" {...field('fromSequence')} maxLength={18} />
          </label>
          <div className="filter-actions">
            <button className="primary" type="submit" disabled={progress.kind === 'busy'}>
              Apply
            </button>
            <button type="button" onClick={() => setFilters(NO_FILTERS)}>
              Clear
            </button>
          </div>
        </form>
      </Card>
      <Status progress={progress} />
      <Card title={`Records (${records.length}${nextCursor ? '+' : ''})`} testId="audit-records">
        {records.length === 0 && progress.kind !== 'busy' ? <p className="empty">No record matches.</p> : null}
        {records.length > 0 ? (
          <table className="table responsive">
            <thead>
              <tr>
                <th>#</th>
                <th>Time</th>
                <th>Actor</th>
                <th>Operation</th>
                <th>Key</th>
                <th>Outcome</th>
                <th>Request</th>
              </tr>
            </thead>
            <tbody>
              {records.map((record) => (
                <tr key={record.sequence} data-sequence={record.sequence} data-outcome={record.outcome}>
                  <td data-label="#">{record.sequence}</td>
                  <td data-label="Time">{formatDate(record.time)}</td>
                  <td data-label="Actor" className="uri">
                    {record.actor ?? '—'} <span className="muted small">{record.plane}</span>
                  </td>
                  <td data-label="Operation">
                    <code>{record.operation}</code>
                  </td>
                  <td data-label="Key">{record.keyName ? `${record.keyName}${record.keyVersion ? ` v${record.keyVersion}` : ''}` : '—'}</td>
                  <td data-label="Outcome">
                    <span className={`badge outcome-${record.outcome}`}>{record.outcome}</span> {record.errorCode ? <code>{record.errorCode}</code> : null}
                  </td>
                  <td data-label="Request" className="muted small">
                    {record.requestId ?? '—'}
                    {record.sourceAddress ? ` · ${record.sourceAddress}` : ''}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
        {nextCursor && applied ? (
          <button onClick={() => void load(applied, nextCursor)} disabled={progress.kind === 'busy'}>
            Load more
          </button>
        ) : null}
      </Card>
      <Card title="Verifying">
        {signing?.refusal ? (
          <p className="status status-error" role="alert" data-testid="checkpoint-refused">
            Keyhold refused to sign a checkpoint ({formatDate(signing.refusal.at)}): the chain since checkpoint #{signing.refusal.sinceSequence} does not
            verify up to #{signing.refusal.headSequence}. {signing.refusal.reason}. Check it with <code>kmsctl audit verify</code>.
          </p>
        ) : null}
        <p>
          Records form a hash chain, and Keyhold signs checkpoints of its head with an Ed25519 key. Check an export offline with{' '}
          <code>kmsctl audit verify --file keyhold-audit.jsonl --public-key audit.pem</code>: it names the first altered, missing or reordered record.
          After a prune, give it the archives of the pruned records first, then the export (one <code>--file</code> each): together they prove the trail
          from its first record.
        </p>
        {publicKey ? (
          <>
            <p>
              Key fingerprint: <code data-testid="audit-key-fingerprint">{publicKey.fingerprint}</code>
            </p>
            <pre className="pem">{publicKey.publicKeyPem}</pre>
          </>
        ) : null}
      </Card>
      <RetentionCard canAdminister={canAdminister} />
    </main>
  );
}

/**
 * Retention: where the chain starts now, and (admins) a request to prune through a signed checkpoint old enough
 * to go. The server re-verifies what it removes; a refusal shows here as its message.
 */
function RetentionCard({ canAdminister }: { canAdminister: boolean }) {
  const { data: retention, progress: loading, reload } = useResource<AuditRetentionView>('/api/v1/audit/retention', 'retention');
  const { progress, setProgress, run, busy } = useAction();
  const [requested, setRequested] = useState<PendingOperationView | null>(null);
  const [through, setThrough] = useState('');
  const [days, setDays] = useState('');
  /** Opens the operation at `path` (the passkey signs it); then shows where it stands and reloads the card. */
  const requestAt = (what: string, path: string, body: object) => {
    void run(`Waiting for your passkey: it signs the ${what} request…`, () => requestOperationAt(path, body), () => '').then((operation) => {
      if (!operation) return;
      setProgress(IDLE);
      setRequested(operation);
      setDays('');
      setThrough('');
      reload();
    });
  };
  const requestPolicy = (requestedDays: number | null) => requestAt('retention', '/api/v1/audit/retention-policy', { days: requestedDays });
  const request = (event: FormEvent) => {
    event.preventDefault();
    requestAt('prune', '/api/v1/audit/prune', { throughSequence: Number(through) });
  };
  return (
    <Card title="Retention" testId="audit-retention">
      <Status progress={loading} />
      {retention ? (
        <>
          <p data-testid="audit-chain-start">
            {retention.prune ? (
              <>
                The chain starts at <strong>#{retention.prune.throughSequence + 1}</strong>: records through #{retention.prune.throughSequence} were pruned on{' '}
                {formatDate(retention.prune.time)}, and verification starts from that signed prune.
              </>
            ) : (
              <>Nothing has been pruned: the chain starts at #1.</>
            )}
          </p>
          <p>
            Records are kept at least <strong>{retention.minRetentionDays}</strong> day{retention.minRetentionDays === 1 ? '' : 's'}: a prune goes through a
            checkpoint signed before {formatDate(retention.cutoff)}. Keyhold re-verifies the records before removing them and refuses if they do not verify.
          </p>
          <p data-testid="audit-archiving">
            {retention.archiving ? (
              <>
                Each prune first archives the records it removes in the server&apos;s archive folder (<code>KEYHOLD_AUDIT_ARCHIVE_DIR</code>), as a file that{' '}
                <code>kmsctl audit verify --file</code> checks; a prune whose archive cannot be written removes nothing.
              </>
            ) : (
              <>
                Archive first: export the records through that checkpoint, check the file with <code>kmsctl audit verify --file</code>, and keep it apart from
                the database (or set <code>KEYHOLD_AUDIT_ARCHIVE_DIR</code> on the server, and every prune archives first).
              </>
            )}
          </p>
          <p data-testid="audit-retention-policy">
            {retention.policyDays === null ? (
              <>Keyhold prunes only by request.</>
            ) : (
              <>
                Keyhold prunes by itself, hourly, the records older than <strong>{retention.policyDays}</strong> days, through the latest checkpoint old
                enough.
              </>
            )}
          </p>
          {canAdminister ? (
            <form
              className="form-actions"
              onSubmit={(event) => {
                event.preventDefault();
                requestPolicy(Number(days));
              }}
            >
              <label>
                Keep records for (days)
                <input inputMode="numeric" value={days} onChange={(event) => setDays(event.target.value)} min={retention.minRetentionDays} type="number" required />
              </label>
              <button type="submit" disabled={busy || !days}>
                Request retention
              </button>
              {retention.policyDays !== null ? (
                <button type="button" disabled={busy} onClick={() => requestPolicy(null)}>
                  Stop pruning by itself
                </button>
              ) : null}
            </form>
          ) : null}
          {canAdminister && retention.candidates.length === 0 ? <p className="empty">No checkpoint is old enough to prune through yet.</p> : null}
          {canAdminister && retention.candidates.length > 0 ? (
            <form className="form-actions" onSubmit={request}>
              <label>
                Prune through checkpoint
                <select value={through} onChange={(event) => setThrough(event.target.value)} required>
                  <option value="">choose a checkpoint</option>
                  {retention.candidates.map((checkpoint) => (
                    <option key={checkpoint.sequence} value={checkpoint.sequence}>
                      #{checkpoint.sequence} · signed {formatDate(checkpoint.time)}
                    </option>
                  ))}
                </select>
              </label>
              <button className="primary" type="submit" disabled={busy || !through}>
                Request prune
              </button>
            </form>
          ) : null}
          {canAdminister ? (
            <p className="muted small">
              A sensitive operation: your passkey signs the request, and it runs once enough administrators approved it under <Link to="/approvals">Approvals</Link>.
            </p>
          ) : null}
        </>
      ) : null}
      {requested ? <RequestedOperation operation={requested} what={requestedLabel(requested)} /> : null}
      {requested && archiveOf(requested) ? (
        <p data-testid="prune-archive">
          Archived first as <code>{archiveOf(requested)?.file}</code>: {archiveOf(requested)?.records} records, {archiveOf(requested)?.bytes} bytes, SHA-256{' '}
          <code>{archiveOf(requested)?.sha256}</code>.
        </p>
      ) : null}
      <Status progress={progress} />
    </Card>
  );
}

/** The archive an executed prune wrote first (when the server archives). */
function archiveOf(operation: PendingOperationView): { file: string; records: number; bytes: number; sha256: string } | null {
  if (operation.status !== 'executed' || operation.operation.kind !== 'prune-audit-records') return null;
  const archive = (operation.result as { archive?: { file: string; records: number; bytes: number; sha256: string } | null } | null)?.archive;
  return archive ?? null;
}

/** How the card names an operation it requested. */
function requestedLabel(operation: PendingOperationView): string {
  const requested = operation.operation;
  if (requested.kind === 'prune-audit-records') return `Prune through #${requested.throughSequence}`;
  if (requested.kind === 'set-audit-retention') return requested.days === null ? 'Stop pruning by itself' : `Keep records for ${requested.days} days`;
  return requested.kind;
}
