import { useState } from 'react';
import type { Grant, GrantView, IssuedCertificateResult, IssuedCertificateView, Operation } from '@keyhold/contracts';
import { api } from './api';
import { formatDate } from './format';
import { MAX_CERTIFICATE_VALIDITY_HOURS, OPERATIONS } from './limits';
import { Card, ReadOnlyNote, Status, UriText, useAction, useResource } from './ui';

// Services are identities (URIs such as spiffe://prod/ns/payments/sa/api) that reach the service listener with a
// client certificate. Grants say what an identity may do with which keys; certificates say who a caller is.

const grantPath = (id: string) => `/api/v1/grants/${encodeURIComponent(id)}`;
const isExpired = (expiresAt: string | null | undefined) => !!expiresAt && Date.parse(expiresAt) <= Date.now();

export function ServicesPage({ canAdminister }: { canAdminister: boolean }) {
  return (
    <main className="page">
      <div className="page-title">
        <h1>Services</h1>
      </div>
      {!canAdminister ? <ReadOnlyNote>Only admins change grants and certificates: you can read them here.</ReadOnlyNote> : null}
      <Grants canAdminister={canAdminister} />
      <Certificates canAdminister={canAdminister} />
    </main>
  );
}

// ---------------------------------------------------------------------------------------------
// Grants

function Grants({ canAdminister }: { canAdminister: boolean }) {
  const { data, setData, progress: loading } = useResource<{ grants: GrantView[] }>('/api/v1/grants', 'grants');
  const { progress, run, busy } = useAction();
  const [editing, setEditing] = useState<GrantView | 'new' | null>(null);
  const [deleting, setDeleting] = useState<string | null>(null);
  const grants = data?.grants ?? [];
  const put = (grant: GrantView) =>
    setData((current) => {
      const list = current?.grants ?? [];
      return { grants: list.some((item) => item.id === grant.id) ? list.map((item) => (item.id === grant.id ? grant : item)) : [...list, grant] };
    });

  const save = async (grant: Grant) => {
    const id = editing && editing !== 'new' ? editing.id : null;
    const saved = await run(
      id ? 'Saving the grant…' : 'Creating the grant…',
      () => api<GrantView>(id ? 'PATCH' : 'POST', id ? grantPath(id) : '/api/v1/grants', { body: grant }),
      (result) => `${id ? 'Saved' : 'Created'} the grant for ${result.identity}: it applies within seconds.`,
    );
    if (saved) {
      put(saved);
      setEditing(null);
    }
  };
  const expire = async (grant: GrantView) => {
    const saved = await run(
      'Expiring the grant…',
      () => api<GrantView>('PATCH', grantPath(grant.id), { body: { ...withoutStored(grant), expiresAt: new Date().toISOString() } }),
      (result) => `The grant for ${result.identity} has expired.`,
    );
    if (saved) put(saved);
  };
  const remove = async (grant: GrantView) => {
    setDeleting(null);
    const done = await run(
      'Deleting the grant…',
      async () => {
        await api('DELETE', grantPath(grant.id));
        return true;
      },
      () => `Deleted the grant for ${grant.identity}.`,
    );
    if (done) setData((current) => ({ grants: (current?.grants ?? []).filter((item) => item.id !== grant.id) }));
  };

  return (
    <Card
      title="Grants"
      testId="grants"
      actions={
        canAdminister ? (
          <button className="primary" onClick={() => setEditing(editing === 'new' ? null : 'new')} aria-expanded={editing === 'new'}>
            New grant
          </button>
        ) : null
      }
    >
      <p className="muted small">
        Which identities may do what with which keys. Patterns are exact or use <code>*</code> for any run of characters.
      </p>
      {editing ? <GrantForm key={editing === 'new' ? 'new' : editing.id} initial={editing === 'new' ? null : editing} busy={busy} onSave={(grant) => void save(grant)} onCancel={() => setEditing(null)} /> : null}
      <Status progress={loading} />
      <Status progress={progress} />
      {data && grants.length === 0 ? <p className="empty">No grants in the database (grants from the grants file still apply).</p> : null}
      {grants.length > 0 ? (
        <table className="table responsive" data-testid="grants-table">
          <thead>
            <tr>
              <th>Identity</th>
              <th>Keys</th>
              <th>Operations</th>
              <th>Expires</th>
              {canAdminister ? (
                <th>
                  <span className="sr-only">Actions</span>
                </th>
              ) : null}
            </tr>
          </thead>
          <tbody>
            {grants.map((grant) => (
              <tr key={grant.id} data-grant={grant.identity}>
                <td data-label="Identity">
                  <UriText value={grant.identity} />
                  {grant.description ? <div className="muted small">{grant.description}</div> : null}
                </td>
                <td data-label="Keys">
                  <code>{grant.keys}</code>
                </td>
                <td data-label="Operations">{grant.operations.join(', ')}</td>
                <td data-label="Expires">
                  {grant.expiresAt ? formatDate(grant.expiresAt) : 'never'}
                  {isExpired(grant.expiresAt) ? <span className="badge badge-disabled">expired</span> : null}
                </td>
                {canAdminister ? (
                  <td data-label="Actions" className="row-actions">
                    <button onClick={() => setEditing(grant)} disabled={busy}>
                      Edit
                    </button>
                    {isExpired(grant.expiresAt) ? null : (
                      <button onClick={() => void expire(grant)} disabled={busy}>
                        Expire now
                      </button>
                    )}
                    {deleting === grant.id ? (
                      <>
                        <button className="danger" onClick={() => void remove(grant)} disabled={busy}>
                          Delete for good
                        </button>
                        <button onClick={() => setDeleting(null)}>Keep</button>
                      </>
                    ) : (
                      <button onClick={() => setDeleting(grant.id)} disabled={busy}>
                        Delete…
                      </button>
                    )}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </Card>
  );
}

/** The grant as the API takes it back: no id or timestamps. */
function withoutStored({ identity, keys, operations, expiresAt, description }: GrantView): Grant {
  return { identity, keys, operations, ...(expiresAt ? { expiresAt } : {}), ...(description ? { description } : {}) };
}

function GrantForm({ initial, busy, onSave, onCancel }: { initial: GrantView | null; busy: boolean; onSave: (grant: Grant) => void; onCancel: () => void }) {
  const [identity, setIdentity] = useState(initial?.identity ?? 'spiffe://');
  const [keys, setKeys] = useState(initial?.keys ?? '*');
  const [all, setAll] = useState(initial?.operations[0] === '*');
  const [operations, setOperations] = useState<Operation[]>(initial && initial.operations[0] !== '*' ? (initial.operations as Operation[]) : ['encrypt', 'decrypt']);
  const [expires, setExpires] = useState(initial?.expiresAt ? initial.expiresAt.slice(0, 16) : '');
  const [description, setDescription] = useState(initial?.description ?? '');
  const toggle = (operation: Operation, on: boolean) =>
    setOperations((current) => (on ? [...current, operation] : current.filter((item) => item !== operation)));
  return (
    <form
      className="grant-form"
      aria-label={initial ? 'Edit grant' : 'New grant'}
      onSubmit={(event) => {
        event.preventDefault();
        onSave({
          identity: identity.trim(),
          keys: keys.trim(),
          operations: all ? ['*'] : OPERATIONS.filter((operation) => operations.includes(operation)),
          ...(expires ? { expiresAt: new Date(`${expires}:00Z`).toISOString() } : {}),
          ...(description.trim() ? { description: description.trim() } : {}),
        });
      }}
    >
      <div className="grid-form">
        <label>
          Identity pattern
          <input name="grant-identity" value={identity} onChange={(event) => setIdentity(event.target.value)} required maxLength={512} spellCheck={false} />
        </label>
        <label>
          Key name pattern
          <input name="grant-keys" value={keys} onChange={(event) => setKeys(event.target.value)} required maxLength={512} spellCheck={false} />
        </label>
        <label>
          Expires (UTC, empty for never)
          <input name="grant-expires" type="datetime-local" value={expires} onChange={(event) => setExpires(event.target.value)} />
        </label>
        <label>
          Description
          <input name="grant-description" value={description} onChange={(event) => setDescription(event.target.value)} maxLength={1024} />
        </label>
      </div>
      <fieldset className="operations">
        <legend>Operations</legend>
        <label className="check">
          <input type="checkbox" checked={all} onChange={(event) => setAll(event.target.checked)} /> every operation (<code>*</code>)
        </label>
        {OPERATIONS.map((operation) => (
          <label className="check" key={operation}>
            <input type="checkbox" name={`operation-${operation}`} disabled={all} checked={all || operations.includes(operation)} onChange={(event) => toggle(operation, event.target.checked)} />{' '}
            {operation}
          </label>
        ))}
      </fieldset>
      <div className="form-actions">
        <button className="primary" type="submit" disabled={busy || (!all && operations.length === 0)}>
          {initial ? 'Save grant' : 'Create grant'}
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

// ---------------------------------------------------------------------------------------------
// Certificates

function Certificates({ canAdminister }: { canAdminister: boolean }) {
  const { data, setData, progress: loading } = useResource<{ certificates: IssuedCertificateView[] }>('/api/v1/certificates', 'certificates');
  const [issuing, setIssuing] = useState(false);
  const certificates = data?.certificates ?? [];
  const put = (certificate: IssuedCertificateView) =>
    setData((current) => {
      const list = current?.certificates ?? [];
      return {
        certificates: list.some((item) => item.serialNumber === certificate.serialNumber)
          ? list.map((item) => (item.serialNumber === certificate.serialNumber ? certificate : item))
          : [certificate, ...list],
      };
    });
  return (
    <Card
      title="Client certificates"
      testId="certificates"
      actions={
        canAdminister ? (
          <button className="primary" onClick={() => setIssuing((open) => !open)} aria-expanded={issuing}>
            Issue certificate
          </button>
        ) : null
      }
    >
      <p className="muted small">Certificates Keyhold’s service CA issued. The identity is the certificate’s URI; a revoked certificate is refused at once.</p>
      {issuing ? <IssueCertificate onIssued={put} onClose={() => setIssuing(false)} /> : null}
      <Status progress={loading} />
      {data && certificates.length === 0 ? <p className="empty">No certificates issued yet.</p> : null}
      {certificates.length > 0 ? (
        <table className="table responsive" data-testid="certificates-table">
          <thead>
            <tr>
              <th>Identity</th>
              <th>Serial</th>
              <th>Valid until</th>
              <th>State</th>
              {canAdminister ? (
                <th>
                  <span className="sr-only">Actions</span>
                </th>
              ) : null}
            </tr>
          </thead>
          <tbody>
            {certificates.map((certificate) => (
              <CertificateRow key={certificate.serialNumber} certificate={certificate} canAdminister={canAdminister} onRevoked={put} />
            ))}
          </tbody>
        </table>
      ) : null}
    </Card>
  );
}

function CertificateRow({ certificate, canAdminister, onRevoked }: { certificate: IssuedCertificateView; canAdminister: boolean; onRevoked: (certificate: IssuedCertificateView) => void }) {
  const { progress, run, busy } = useAction();
  const [confirming, setConfirming] = useState(false);
  const [reason, setReason] = useState('');
  const state = certificate.revokedAt ? 'revoked' : isExpired(certificate.notAfter) ? 'expired' : 'valid';
  const revoke = async () => {
    const revoked = await run(
      'Revoking…',
      () =>
        api<IssuedCertificateView>('POST', `/api/v1/certificates/${encodeURIComponent(certificate.serialNumber)}/revoke`, {
          body: reason.trim() ? { reason: reason.trim() } : {},
        }),
      () => 'Revoked: the service listener refuses this certificate.',
    );
    if (revoked) {
      setConfirming(false);
      onRevoked(revoked);
    }
  };
  return (
    <tr data-serial={certificate.serialNumber} data-identity={certificate.identity}>
      <td data-label="Identity">
        <UriText value={certificate.identity} />
      </td>
      <td data-label="Serial">
        <code className="serial">{certificate.serialNumber}</code>
      </td>
      <td data-label="Valid until">{formatDate(certificate.notAfter)}</td>
      <td data-label="State">
        <span className="cell-stack">
          <span className={`badge badge-cert-${state}`}>{state}</span>
          {certificate.revokedAt ? (
            <span className="muted small">
              {formatDate(certificate.revokedAt)}
              {certificate.revocationReason ? `: ${certificate.revocationReason}` : ''}
            </span>
          ) : null}
        </span>
      </td>
      {canAdminister ? (
        <td data-label="Actions" className="row-actions">
          {state === 'revoked' ? null : confirming ? (
            <form
              className="inline-form"
              onSubmit={(event) => {
                event.preventDefault();
                void revoke();
              }}
            >
              <input aria-label="Reason for revoking" placeholder="Reason (optional)" value={reason} onChange={(event) => setReason(event.target.value)} maxLength={256} />
              <button className="danger" type="submit" disabled={busy}>
                Revoke
              </button>
              <button type="button" onClick={() => setConfirming(false)}>
                Keep
              </button>
            </form>
          ) : (
            <button onClick={() => setConfirming(true)}>Revoke…</button>
          )}
          <Status progress={progress} />
        </td>
      ) : null}
    </tr>
  );
}

/** Saves text as a file through a short-lived object URL. */
function download(filename: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: 'application/x-pem-file' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

const fileStem = (identity: string) => identity.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 80) || 'service';

function IssueCertificate({ onIssued, onClose }: { onIssued: (certificate: IssuedCertificateView) => void; onClose: () => void }) {
  const [identity, setIdentity] = useState('spiffe://');
  const [hours, setHours] = useState('24');
  const [mode, setMode] = useState<'generate' | 'csr'>('generate');
  const [csr, setCsr] = useState('');
  const [issued, setIssued] = useState<IssuedCertificateResult | null>(null);
  const { progress, setProgress, run, busy } = useAction();

  if (issued) {
    const stem = fileStem(issued.certificate.identity);
    return (
      <section className="issued" aria-label="Issued certificate">
        <h3>Issued for {issued.certificate.identity}</h3>
        <p>
          Serial <code className="break">{issued.certificate.serialNumber}</code>, valid until <strong>{formatDate(issued.certificate.notAfter)}</strong>.
        </p>
        {issued.privateKeyPem ? (
          <p className="warning" data-testid="private-key-warning">
            Keyhold made the private key and did not keep it. Download it now: it is offered <strong>once</strong> and leaves this page when you download
            it or click Done.
          </p>
        ) : null}
        <div className="form-actions">
          {issued.privateKeyPem ? (
            <button
              className="primary"
              onClick={() => {
                download(`${stem}.key.pem`, issued.privateKeyPem ?? '');
                setIssued({ ...issued, privateKeyPem: null }); // dropped from the page
                setProgress({ kind: 'ok', text: 'Private key downloaded; Keyhold no longer has it anywhere.' });
              }}
            >
              Download private key
            </button>
          ) : null}
          <button onClick={() => download(`${stem}.crt.pem`, issued.certificatePem)}>Download certificate</button>
          <button onClick={() => download('keyhold-service-ca.pem', issued.caCertificatePem)}>Download CA certificate</button>
          <button
            onClick={() => {
              setIssued(null);
              onClose();
            }}
          >
            Done
          </button>
        </div>
        <Status progress={progress} />
      </section>
    );
  }

  return (
    <form
      className="issue-form"
      aria-label="Issue a certificate"
      onSubmit={(event) => {
        event.preventDefault();
        void run(
          'Issuing the certificate…',
          () =>
            api<IssuedCertificateResult>('POST', '/api/v1/certificates', {
              body: { identity: identity.trim(), validityHours: Number(hours), ...(mode === 'csr' ? { csr: csr.trim() } : {}) },
            }),
          (result) => `Issued a certificate for ${result.certificate.identity}.`,
        ).then((result) => {
          if (!result) return;
          setCsr('');
          setIssued(result);
          onIssued(result.certificate);
        });
      }}
    >
      <div className="grid-form">
        <label>
          Service identity (URI)
          <input name="certificate-identity" value={identity} onChange={(event) => setIdentity(event.target.value)} required maxLength={512} spellCheck={false} />
        </label>
        <label>
          Valid for (hours)
          <input name="certificate-hours" type="number" min={1} max={MAX_CERTIFICATE_VALIDITY_HOURS} value={hours} onChange={(event) => setHours(event.target.value)} required />
        </label>
      </div>
      <fieldset className="choice">
        <legend>Key pair</legend>
        <label className="check">
          <input type="radio" name="key-source" checked={mode === 'generate'} onChange={() => setMode('generate')} /> Keyhold generates one (the private key is
          offered once)
        </label>
        <label className="check">
          <input type="radio" name="key-source" checked={mode === 'csr'} onChange={() => setMode('csr')} /> I have a CSR (the private key never leaves the
          service)
        </label>
      </fieldset>
      {mode === 'csr' ? (
        <label>
          Certificate signing request (PEM)
          <textarea name="csr" rows={8} value={csr} onChange={(event) => setCsr(event.target.value)} required spellCheck={false} placeholder="-----BEGIN CERTIFICATE REQUEST-----" />
        </label>
      ) : null}
      <div className="form-actions">
        <button className="primary" type="submit" disabled={busy}>
          Issue
        </button>
        <button type="button" onClick={onClose}>
          Cancel
        </button>
      </div>
      <Status progress={progress} />
    </form>
  );
}
