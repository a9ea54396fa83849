import { useState } from 'react';
import type { Grant, GrantView, Operation } from '@keyhold/contracts';
import { api } from './api';
import { formatDate, isPast } from './format';
import { OPERATIONS } from './limits';
import { Card, Status, UriText, useAction, useResource } from './ui';

// Grants: which identities may do what with which keys (create, edit, expire now, delete).

const grantPath = (id: string) => `/api/v1/grants/${encodeURIComponent(id)}`;

export function Grants({ canAdminister }: { canAdminister: boolean }) {
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
                  {isPast(grant.expiresAt) ? <span className="badge badge-disabled">expired</span> : null}
                </td>
                {canAdminister ? (
                  <td data-label="Actions" className="row-actions">
                    <button onClick={() => setEditing(grant)} disabled={busy}>
                      Edit
                    </button>
                    {isPast(grant.expiresAt) ? null : (
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
