import { type FormEvent, useState } from 'react';
import type { SealStatusView } from '@keyhold/contracts';
import { api, messageOf } from './api';
import { IDLE, Link, type Progress, Status, useResource } from './ui';

const PROTECTION: Record<string, string> = {
  'passphrase-file': 'a passphrase-sealed key file: restart Keyhold with its passphrase to unseal it',
  pkcs11: 'a PKCS#11 token: restart Keyhold with the token available to unseal it',
  'development-file': 'the development key file: restart Keyhold to unseal it',
};

/**
 * Unsealing with Shamir shares, for share holders who may not be administrators (the shares are the credential,
 * as the API's public seal routes say). A share is sent once and leaves the page at once; Keyhold holds the
 * shares it received in memory only, until the threshold is reached or they time out.
 */
export function UnsealPage() {
  const { data: status, setData, progress: loading, reload } = useResource<SealStatusView>('/api/v1/seal', 'the seal status');
  const [share, setShare] = useState('');
  const [progress, setProgress] = useState<Progress>(IDLE);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const sent = share.trim();
    setShare('');
    try {
      setProgress({ kind: 'busy', text: 'Checking the share…' });
      const next = await api<SealStatusView>('POST', '/api/v1/seal/shares', { body: { share: sent }, public: true });
      setData(next);
      setProgress(next.sealed ? { kind: 'ok', text: `Share accepted: ${next.received} of ${next.threshold ?? '?'}.` } : { kind: 'ok', text: 'Keyhold is unsealed.' });
    } catch (error) {
      setProgress({ kind: 'error', text: messageOf(error) });
      // A refusal may have cost the shares held so far (a bad combination, an unseal that could not finish): show the count as it is now.
      reload();
    }
  };

  return (
    <main className="auth" data-testid="unseal">
      <h1>Unseal Keyhold</h1>
      {!status ? (
        <Status progress={loading} />
      ) : !status.sealed ? (
        <>
          <p>Keyhold is unsealed: keys work.</p>
          <Status progress={progress} />
          <p>
            <Link to="/keys">Go to the console</Link>
          </p>
        </>
      ) : status.protection !== 'shamir' ? (
        <p>Keyhold is sealed. Its master key is protected by {PROTECTION[status.protection] ?? status.protection}.</p>
      ) : (
        <>
          <p>
            Keyhold is sealed: no key operation runs until {status.threshold} of the {status.shares} share holders have entered their share.
          </p>
          <p data-testid="unseal-progress">
            <strong>
              {status.received} of {status.threshold}
            </strong>{' '}
            shares received
          </p>
          <form onSubmit={(event) => void submit(event)}>
            <label>
              Your unseal share
              <input
                type="password"
                name="share"
                autoComplete="off"
                spellCheck={false}
                value={share}
                onChange={(event) => setShare(event.target.value)}
                placeholder="khs1-…"
                required
              />
            </label>
            <button className="primary" type="submit" disabled={progress.kind === 'busy' || share.trim() === ''}>
              Submit share
            </button>
          </form>
          <Status progress={progress} />
          <p className="muted small">Shares received are held in Keyhold's memory only, and forgotten after 10 minutes without the threshold.</p>
        </>
      )}
    </main>
  );
}
