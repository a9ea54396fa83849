import { useState } from 'react';
import type { PasskeyView, SessionView } from '@keyhold/contracts';
import { api } from './api';
import { RecoveryCodes } from './auth-pages';
import { formatDate } from './format';
import { Card, Status, useAction, useResource } from './ui';
import { confirmWithPasskey, createPasskey } from './webauthn';

const passkeyPath = (id: string) => `/api/v1/me/passkeys/${encodeURIComponent(id)}`;

/** One's own account: passkeys (list, add, rename, remove) and fresh recovery codes. */
export function AccountPage({ session }: { session: SessionView }) {
  return (
    <main className="page">
      <div className="page-title">
        <h1>Your account</h1>
      </div>
      <Card title="You">
        <dl className="details">
          <dt>Name</dt>
          <dd>{session.admin.name}</dd>
          <dt>Role</dt>
          <dd>{session.admin.role}</dd>
          <dt>Administrator since</dt>
          <dd>{formatDate(session.admin.createdAt)}</dd>
          <dt>This session ends</dt>
          <dd>{formatDate(session.expiresAt)}</dd>
        </dl>
      </Card>
      <Passkeys />
      <RegenerateRecoveryCodes />
    </main>
  );
}

function Passkeys() {
  const { data, setData, progress: loading } = useResource<{ passkeys: PasskeyView[] }>('/api/v1/me/passkeys', 'your passkeys');
  const { progress, run, busy } = useAction();
  const [newName, setNewName] = useState('');
  const [renaming, setRenaming] = useState<{ id: string; name: string } | null>(null);
  const passkeys = data?.passkeys ?? [];

  const add = () =>
    run(
      'Confirm with one of your passkeys, then create the new one…',
      async () => {
        const stepUp = await confirmWithPasskey({ action: 'add-passkey' });
        const options = await api('POST', '/api/v1/me/passkeys/options', { body: { stepUp }, stepUp: true });
        const response = await createPasskey(options);
        const added = await api<PasskeyView>('POST', '/api/v1/me/passkeys', { body: { response, name: newName.trim() || 'passkey' } });
        setData(await api<{ passkeys: PasskeyView[] }>('GET', '/api/v1/me/passkeys'));
        setNewName('');
        return added;
      },
      (added) => `Added the passkey “${added.name}”.`,
    );

  const rename = (id: string, name: string) =>
    run(
      'Renaming…',
      async () => {
        setData(await api<{ passkeys: PasskeyView[] }>('PATCH', passkeyPath(id), { body: { name: name.trim() } }));
        setRenaming(null);
      },
      () => `Renamed to “${name.trim()}”.`,
    );

  const remove = (passkey: PasskeyView) =>
    run(
      `Confirm with one of your passkeys to remove “${passkey.name}”…`,
      async () => {
        const stepUp = await confirmWithPasskey({ action: 'remove-passkey', passkeyId: passkey.id });
        setData(await api<{ passkeys: PasskeyView[] }>('DELETE', passkeyPath(passkey.id), { body: { stepUp }, stepUp: true }));
      },
      () => `Removed the passkey “${passkey.name}”: it no longer signs in.`,
    );

  return (
    <Card title="Your passkeys" testId="passkeys">
      <p className="muted" data-testid="step-up-hint">
        Adding or removing a passkey asks for one of your passkeys first: signing in alone is not enough.
      </p>
      <Status progress={loading} />
      <table className="table responsive" data-testid="passkeys-table">
        <thead>
          <tr>
            <th>Name</th>
            <th>Added</th>
            <th>Last used</th>
            <th>
              <span className="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {passkeys.map((passkey) => (
            <tr key={passkey.id} data-passkey={passkey.name}>
              <td data-label="Name">
                {renaming?.id === passkey.id ? (
                  <form
                    className="inline-form"
                    onSubmit={(event) => {
                      event.preventDefault();
                      void rename(passkey.id, renaming.name);
                    }}
                  >
                    <input aria-label="New passkey name" value={renaming.name} onChange={(event) => setRenaming({ id: passkey.id, name: event.target.value })} maxLength={100} required />
                    <button type="submit" disabled={busy}>
                      Save
                    </button>
                    <button type="button" onClick={() => setRenaming(null)}>
                      Cancel
                    </button>
                  </form>
                ) : (
                  passkey.name
                )}
              </td>
              <td data-label="Added">{formatDate(passkey.createdAt)}</td>
              <td data-label="Last used">{formatDate(passkey.lastUsedAt)}</td>
              <td data-label="Actions" className="row-actions">
                <button onClick={() => setRenaming({ id: passkey.id, name: passkey.name })} disabled={busy}>
                  Rename
                </button>
                <button onClick={() => void remove(passkey)} disabled={busy || passkeys.length < 2} title={passkeys.length < 2 ? 'Add another passkey before removing your last one' : undefined}>
                  Remove
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form
        className="inline-form add-passkey"
        onSubmit={(event) => {
          event.preventDefault();
          void add();
        }}
      >
        <input name="passkey-name" aria-label="New passkey’s name" placeholder="Name, e.g. work laptop" value={newName} onChange={(event) => setNewName(event.target.value)} maxLength={100} />
        <button className="primary" type="submit" disabled={busy}>
          Add a passkey
        </button>
      </form>
      <Status progress={progress} />
    </Card>
  );
}

function RegenerateRecoveryCodes() {
  const { progress, setProgress, run, busy } = useAction();
  const [codes, setCodes] = useState<string[] | null>(null);
  const [confirming, setConfirming] = useState(false);
  const regenerate = async () => {
    setConfirming(false);
    const answer = await run(
      'Confirm with one of your passkeys to make new recovery codes…',
      async () => api<{ recoveryCodes: string[] }>('POST', '/api/v1/me/recovery-codes', { body: { stepUp: await confirmWithPasskey({ action: 'recovery-codes' }) }, stepUp: true }),
      () => 'New recovery codes made: your old ones no longer work.',
    );
    if (answer) setCodes(answer.recoveryCodes);
  };
  return (
    <Card title="Recovery codes" testId="recovery">
      {codes ? (
        <RecoveryCodes
          codes={codes}
          action="Done"
          onSaved={() => {
            setCodes(null); // the codes leave the page
            setProgress({ kind: 'ok', text: 'Your new recovery codes are no longer shown.' });
          }}
        />
      ) : (
        <>
          <p>
            Recovery codes let you register a new passkey when you lose yours. Making new ones replaces every old code, used or not, and asks for one of
            your passkeys first.
          </p>
          {confirming ? (
            <div className="form-actions">
              <button className="danger" onClick={() => void regenerate()} disabled={busy}>
                Replace my recovery codes
              </button>
              <button onClick={() => setConfirming(false)}>Keep the old ones</button>
            </div>
          ) : (
            <button onClick={() => setConfirming(true)} disabled={busy}>
              Make new recovery codes…
            </button>
          )}
        </>
      )}
      <Status progress={progress} />
    </Card>
  );
}
