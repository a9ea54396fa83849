import { useState } from 'react';
import type { IssuedCertificateResult, IssuedCertificateView } from '@keyhold/contracts';
import { api } from './api';
import { saveTextFile } from './download';
import { formatDate, isPast } from './format';
import { MAX_CERTIFICATE_VALIDITY_HOURS } from './limits';
import { Card, Status, UriText, useAction, useResource } from './ui';

// Client certificates from Keyhold's service CA: issue (for a CSR, or with a generated key offered once), revoke.

export function Certificates({ canAdminister }: { canAdminister: boolean }) {
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
  const state = certificate.revokedAt ? 'revoked' : isPast(certificate.notAfter) ? 'expired' : 'valid';
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
                saveTextFile(`${stem}.key.pem`, issued.privateKeyPem ?? '', 'application/x-pem-file');
                setIssued({ ...issued, privateKeyPem: null }); // dropped from the page
                setProgress({ kind: 'ok', text: 'Private key downloaded; Keyhold no longer has it anywhere.' });
              }}
            >
              Download private key
            </button>
          ) : null}
          <button onClick={() => saveTextFile(`${stem}.crt.pem`, issued.certificatePem, 'application/x-pem-file')}>Download certificate</button>
          <button onClick={() => saveTextFile('keyhold-service-ca.pem', issued.caCertificatePem, 'application/x-pem-file')}>Download CA certificate</button>
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
