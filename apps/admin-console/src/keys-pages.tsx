import { useCallback, useEffect, useMemo, useState } from 'react';
import type { KeyListView, KeyView, PendingOperationView } from '@keyhold/contracts';
import { api, keyPath, messageOf } from './api';
import { formatCount, formatDate } from './format';
import { DestroyNow, RotationPolicyForm, ScheduleDestruction } from './key-forms';
import { RequestedOperation } from './operations';
import { navigate } from './router';
import { Card, IDLE, Link, type Progress, ReadOnlyNote, StateBadge, Status } from './ui';
import { UsageChart } from './usage-chart';

export function KeysPage({ canChange }: { canChange: boolean }) {
  const [keys, setKeys] = useState<KeyView[] | null>(null);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [query, setQuery] = useState('');
  const [progress, setProgress] = useState<Progress>({ kind: 'busy', text: 'Loading keys…' });
  const [creating, setCreating] = useState(false);

  const load = useCallback(async (cursor: string | null) => {
    try {
      setProgress({ kind: 'busy', text: 'Loading keys…' });
      const page = await api<KeyListView>('GET', `/api/v1/keys?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      setKeys((previous) => (cursor && previous ? [...previous, ...page.keys] : page.keys));
      setNextCursor(page.nextCursor);
      setProgress(IDLE);
    } catch (error) {
      setProgress({ kind: 'error', text: messageOf(error) });
    }
  }, []);

  useEffect(() => {
    void load(null);
  }, [load]);

  const shown = useMemo(() => {
    const needle = query.trim().toLowerCase();
    if (!keys || !needle) return keys ?? [];
    return keys.filter(
      (key) =>
        key.name.includes(needle) ||
        (key.description ?? '').toLowerCase().includes(needle) ||
        Object.entries(key.labels).some(([label, value]) => `${label}=${value}`.toLowerCase().includes(needle)),
    );
  }, [keys, query]);

  return (
    <main className="page">
      <div className="page-title">
        <h1>Keys</h1>
        {canChange ? (
          <button className="primary" onClick={() => setCreating((open) => !open)} aria-expanded={creating}>
            New key
          </button>
        ) : null}
      </div>
      {!canChange ? <ReadOnlyNote /> : null}
      {creating ? <CreateKeyForm onCreated={(key) => navigate(`/keys/${encodeURIComponent(key.name)}`)} onCancel={() => setCreating(false)} /> : null}
      <Card>
        <div className="toolbar">
          <input
            type="search"
            aria-label="Search keys"
            placeholder="Search by name, description or label"
            value={query}
            onChange={(event) => setQuery(event.target.value)}
          />
          <span className="muted">{keys ? `${shown.length} of ${keys.length}${nextCursor ? '+' : ''} keys` : ''}</span>
        </div>
        <Status progress={progress} />
        {keys && keys.length === 0 ? <p className="empty">No keys yet.</p> : null}
        {shown.length > 0 ? (
          <table className="table responsive" data-testid="keys-table">
            <thead>
              <tr>
                <th>Name</th>
                <th>Algorithm</th>
                <th>State</th>
                <th className="num">Primary version</th>
                <th>Next rotation</th>
                <th className="num">Encryptions</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((key) => (
                <tr key={key.name} data-key={key.name}>
                  <td data-label="Name">
                    <Link to={`/keys/${encodeURIComponent(key.name)}`}>{key.name}</Link>
                    {key.description ? <div className="muted small">{key.description}</div> : null}
                  </td>
                  <td data-label="Algorithm">{key.algorithm}</td>
                  <td data-label="State">
                    <StateBadge state={key.state} />
                  </td>
                  <td data-label="Primary version" className="num">
                    v{key.primaryVersion}
                  </td>
                  <td data-label="Next rotation">{key.rotationPeriodDays ? formatDate(key.nextRotationAt) : 'Manual'}</td>
                  <td data-label="Encryptions" className="num">
                    {formatCount(key.encryptions)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : keys && keys.length > 0 ? (
          <p className="empty">No key matches “{query}”.</p>
        ) : null}
        {nextCursor ? (
          <button onClick={() => void load(nextCursor)} disabled={progress.kind === 'busy'}>
            Load more
          </button>
        ) : null}
      </Card>
    </main>
  );
}

function CreateKeyForm({ onCreated, onCancel }: { onCreated: (key: KeyView) => void; onCancel: () => void }) {
  const [name, setName] = useState('');
  const [rotation, setRotation] = useState('90');
  const [description, setDescription] = useState('');
  const [progress, setProgress] = useState<Progress>(IDLE);
  const create = async () => {
    try {
      setProgress({ kind: 'busy', text: `Creating ${name}…` });
      const days = rotation.trim() ? Number(rotation) : null;
      const key = await api<KeyView>('POST', '/api/v1/keys', {
        body: { name: name.trim(), algorithm: 'aes-256-gcm', rotationPeriodDays: days, ...(description.trim() ? { description: description.trim() } : {}) },
      });
      onCreated(key);
    } catch (error) {
      setProgress({ kind: 'error', text: messageOf(error) });
    }
  };
  return (
    <Card title="New key">
      <form
        className="grid-form"
        onSubmit={(event) => {
          event.preventDefault();
          void create();
        }}
      >
        <label>
          Name
          <input name="key-name" value={name} onChange={(event) => setName(event.target.value)} required pattern="[a-z0-9][a-z0-9._\-]{0,63}" placeholder="payments-db" />
        </label>
        <label>
          Algorithm
          <select disabled value="aes-256-gcm">
            <option value="aes-256-gcm">AES-256-GCM</option>
          </select>
        </label>
        <label>
          Rotate every (days, empty for manual)
          <input name="rotation-days" type="number" min={1} max={3650} value={rotation} onChange={(event) => setRotation(event.target.value)} />
        </label>
        <label>
          Description
          <input name="description" value={description} onChange={(event) => setDescription(event.target.value)} maxLength={1024} />
        </label>
        <div className="form-actions">
          <button className="primary" type="submit" disabled={progress.kind === 'busy'}>
            Create key
          </button>
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
      <Status progress={progress} />
    </Card>
  );
}

type KeyPanel = 'policy' | 'schedule-destruction' | 'destroy-now' | null;

export function KeyPage({ name, canChange, canAdminister }: { name: string; canChange: boolean; canAdminister: boolean }) {
  const [key, setKey] = useState<KeyView | null>(null);
  const [progress, setProgress] = useState<Progress>({ kind: 'busy', text: 'Loading the key…' });
  const [panel, setPanel] = useState<KeyPanel>(null);
  const [requested, setRequested] = useState<PendingOperationView | null>(null);
  const toggle = (which: KeyPanel) => setPanel((open) => (open === which ? null : which));

  useEffect(() => {
    let live = true;
    api<KeyView>('GET', keyPath(name))
      .then((loaded) => {
        if (!live) return;
        setKey(loaded);
        setProgress(IDLE);
      })
      .catch((error: unknown) => live && setProgress({ kind: 'error', text: messageOf(error) }));
    return () => {
      live = false;
    };
  }, [name]);

  const act = async (busy: string, path: string | null, done: (key: KeyView) => string, body?: unknown) => {
    try {
      setProgress({ kind: 'busy', text: busy });
      setRequested(null);
      const updated = path === null ? await api<KeyView>('PATCH', keyPath(name), { body }) : await api<KeyView>('POST', `${keyPath(name)}/${path}`, body === undefined ? {} : { body });
      setKey(updated);
      setPanel(null);
      setProgress({ kind: 'ok', text: done(updated) });
    } catch (error) {
      setProgress({ kind: 'error', text: messageOf(error) });
    }
  };

  const busy = progress.kind === 'busy';
  return (
    <main className="page">
      <p className="crumbs">
        <a
          href="/keys"
          onClick={(event) => {
            event.preventDefault();
            navigate('/keys');
          }}
        >
          Keys
        </a>{' '}
        / {name}
      </p>
      <div className="page-title">
        <h1>{name}</h1>
        {key ? <StateBadge state={key.state} /> : null}
      </div>
      <Status progress={progress} />
      {requested ? <RequestedOperation operation={requested} /> : null}
      {key && !canChange ? <ReadOnlyNote /> : null}
      {key ? (
        <>
          {canChange && key.state !== 'destroyed' ? (
            <div className="actions" aria-label="Key actions">
              <button onClick={() => void act('Rotating…', 'rotate', (k) => `Rotated: version ${k.primaryVersion} is now primary.`)} disabled={busy || key.state !== 'enabled'}>
                Rotate now
              </button>
              <button onClick={() => toggle('policy')} disabled={busy} aria-expanded={panel === 'policy'}>
                Edit rotation policy…
              </button>
              {key.state === 'enabled' ? (
                <button onClick={() => void act('Disabling…', 'disable', () => 'Disabled: the key no longer encrypts or decrypts.')} disabled={busy}>
                  Disable
                </button>
              ) : null}
              {key.state === 'disabled' ? (
                <button onClick={() => void act('Enabling…', 'enable', () => 'Enabled.')} disabled={busy}>
                  Enable
                </button>
              ) : null}
              {key.state === 'pending_destruction' ? (
                <button
                  className="primary"
                  onClick={() => void act('Cancelling destruction…', 'cancel-destruction', () => 'Destruction cancelled: the key is disabled; enable it to use it again.')}
                  disabled={busy}
                >
                  Cancel destruction
                </button>
              ) : (
                <button className="danger" onClick={() => toggle('schedule-destruction')} disabled={busy} aria-expanded={panel === 'schedule-destruction'}>
                  Schedule destruction…
                </button>
              )}
              {canAdminister ? (
                <button className="danger-outline" onClick={() => toggle('destroy-now')} disabled={busy} aria-expanded={panel === 'destroy-now'}>
                  Destroy now…
                </button>
              ) : null}
            </div>
          ) : null}
          {panel === 'policy' ? (
            <RotationPolicyForm
              keyView={key}
              busy={busy}
              onCancel={() => setPanel(null)}
              onSave={(change, summary) => void act('Saving the rotation policy…', null, () => summary, change)}
            />
          ) : null}
          {panel === 'destroy-now' ? (
            <DestroyNow
              name={key.name}
              onCancel={() => setPanel(null)}
              onRequested={(operation) => {
                setPanel(null);
                setProgress(IDLE);
                setRequested(operation);
                if (operation.status === 'executed') void api<KeyView>('GET', keyPath(name)).then(setKey, () => undefined);
              }}
            />
          ) : null}
          {panel === 'schedule-destruction' && key.state !== 'pending_destruction' ? (
            <ScheduleDestruction
              name={key.name}
              busy={busy}
              onCancel={() => setPanel(null)}
              onConfirm={(days) =>
                void act('Scheduling destruction…', 'schedule-destruction', (k) => `Destruction scheduled for ${formatDate(k.destroyAt)}.`, { pendingDays: days })
              }
            />
          ) : null}
          {key.state === 'pending_destruction' ? (
            <p className="warning" data-testid="destroy-at">
              This key and all its versions will be destroyed on <strong>{formatDate(key.destroyAt)}</strong> unless the destruction is cancelled.
            </p>
          ) : null}
          <Card title="Details">
            <dl className="details">
              <dt>Algorithm</dt>
              <dd>{key.algorithm}</dd>
              <dt>Primary version</dt>
              <dd data-testid="primary-version">v{key.primaryVersion}</dd>
              <dt>Oldest version that decrypts</dt>
              <dd data-testid="min-decryption-version">v{key.minDecryptionVersion}</dd>
              <dt>Rotation</dt>
              <dd data-testid="rotation">{key.rotationPeriodDays ? `every ${key.rotationPeriodDays} days, next ${formatDate(key.nextRotationAt)}` : 'manual'}</dd>
              <dt>Encryptions</dt>
              <dd>{formatCount(key.encryptions)}</dd>
              <dt>Created</dt>
              <dd>{formatDate(key.createdAt)}</dd>
              {key.description ? (
                <>
                  <dt>Description</dt>
                  <dd>{key.description}</dd>
                </>
              ) : null}
              {Object.keys(key.labels).length > 0 ? (
                <>
                  <dt>Labels</dt>
                  <dd>
                    {Object.entries(key.labels).map(([label, value]) => (
                      <span className="label" key={label}>
                        {label}={value}
                      </span>
                    ))}
                  </dd>
                </>
              ) : null}
            </dl>
          </Card>
          <Card title="Encryptions per day">
            <UsageChart keyView={key} />
          </Card>
          <Card title="Versions">
            <table className="table responsive" data-testid="versions-table">
              <thead>
                <tr>
                  <th>Version</th>
                  <th>State</th>
                  <th>Created</th>
                  <th className="num">Encryptions</th>
                  <th>Last use</th>
                </tr>
              </thead>
              <tbody>
                {[...key.versions]
                  .sort((a, b) => b.version - a.version)
                  .map((version) => (
                    <tr key={version.version} data-version={version.version}>
                      <td data-label="Version">
                        <span>
                          v{version.version}
                          {version.version === key.primaryVersion ? <span className="tag">primary</span> : null}
                        </span>
                      </td>
                      <td data-label="State">
                        <StateBadge state={version.state} />
                        {version.destroyAt ? <div className="muted small">destroyed on {formatDate(version.destroyAt)}</div> : null}
                      </td>
                      <td data-label="Created">{formatDate(version.createdAt)}</td>
                      <td data-label="Encryptions" className="num">
                        {formatCount(version.encryptions)}
                      </td>
                      <td data-label="Last use">{formatDate(version.lastUsedAt)}</td>
                    </tr>
                  ))}
              </tbody>
            </table>
          </Card>
        </>
      ) : null}
    </main>
  );
}
