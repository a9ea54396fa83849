import { useState } from 'react';
import type { KeyView, PendingOperationView } from '@keyhold/contracts';
import { addDays, formatDate } from './format';
import { MAX_PENDING_DAYS, MAX_ROTATION_PERIOD_DAYS, MIN_PENDING_DAYS } from './limits';
import { requestOperation } from './operations';
import { Card, Link, Status, useAction } from './ui';

// The key page's forms for the changes that need more than a click: rotation policy, scheduled and immediate destruction.

export function ScheduleDestruction({ name, busy, onConfirm, onCancel }: { name: string; busy: boolean; onConfirm: (days: number) => void; onCancel: () => void }) {
  const [days, setDays] = useState(String(MAX_PENDING_DAYS));
  const [typed, setTyped] = useState('');
  const parsed = Number(days);
  const validDays = Number.isInteger(parsed) && parsed >= MIN_PENDING_DAYS && parsed <= MAX_PENDING_DAYS;
  const confirmed = typed === name;
  return (
    <section className="card danger-zone" aria-label="Schedule destruction">
      <h2>Schedule destruction</h2>
      <p>
        After the waiting window, every version of <strong>{name}</strong> is destroyed for good and anything it encrypted can never be decrypted again.
        Until then the key is unusable and the destruction can be cancelled.
      </p>
      <form
        className="grid-form destroy-form"
        onSubmit={(event) => {
          event.preventDefault();
          if (validDays && confirmed) onConfirm(parsed);
        }}
      >
        <label>
          Waiting window (days, {MIN_PENDING_DAYS}–{MAX_PENDING_DAYS})
          <input name="pending-days" type="number" min={MIN_PENDING_DAYS} max={MAX_PENDING_DAYS} value={days} onChange={(event) => setDays(event.target.value)} />
        </label>
        <p className="destroy-date" data-testid="destroy-date">
          {validDays ? (
            <>
              Destroyed on <strong>{formatDate(addDays(new Date(), parsed).toISOString())}</strong> (about {parsed} days from now)
            </>
          ) : (
            `Choose between ${MIN_PENDING_DAYS} and ${MAX_PENDING_DAYS} days.`
          )}
        </p>
        <label>
          <span>
            Type <code>{name}</code> to confirm
          </span>
          <input name="confirm-name" value={typed} onChange={(event) => setTyped(event.target.value)} autoComplete="off" spellCheck={false} />
        </label>
        <div className="form-actions">
          <button className="danger" type="submit" disabled={busy || !validDays || !confirmed}>
            Schedule destruction
          </button>
          <button type="button" onClick={onCancel}>
            Keep the key
          </button>
        </div>
      </form>
    </section>
  );
}

/** Automatic rotation and the oldest version that may still decrypt: one PATCH with what changed. */
export function RotationPolicyForm({
  keyView,
  busy,
  onSave,
  onCancel,
}: {
  keyView: KeyView;
  busy: boolean;
  onSave: (change: { rotationPeriodDays?: number | null; minDecryptionVersion?: number }, summary: string) => void;
  onCancel: () => void;
}) {
  const [days, setDays] = useState(keyView.rotationPeriodDays ? String(keyView.rotationPeriodDays) : '');
  const [minimum, setMinimum] = useState(String(keyView.minDecryptionVersion));
  const period = days.trim() ? Number(days) : null;
  const validPeriod = period === null || (Number.isInteger(period) && period >= 1 && period <= MAX_ROTATION_PERIOD_DAYS);
  const minimumVersion = Number(minimum);
  const versions = [...keyView.versions].sort((a, b) => a.version - b.version);
  const change: { rotationPeriodDays?: number | null; minDecryptionVersion?: number } = {};
  if (period !== keyView.rotationPeriodDays) change.rotationPeriodDays = period;
  if (minimumVersion !== keyView.minDecryptionVersion) change.minDecryptionVersion = minimumVersion;
  const summary = [
    change.rotationPeriodDays !== undefined ? (period ? `rotates every ${period} days` : 'rotates only by hand') : null,
    change.minDecryptionVersion !== undefined ? `decrypts from v${minimumVersion} on` : null,
  ]
    .filter(Boolean)
    .join('; ');
  return (
    <Card title="Rotation policy">
      <form
        className="grid-form"
        onSubmit={(event) => {
          event.preventDefault();
          if (validPeriod && summary) onSave(change, `Saved: ${keyView.name} ${summary}.`);
        }}
      >
        <label>
          Rotate automatically every (days, empty for manual)
          <input name="policy-rotation-days" type="number" min={1} max={MAX_ROTATION_PERIOD_DAYS} value={days} onChange={(event) => setDays(event.target.value)} />
        </label>
        <label>
          Oldest version that decrypts
          <select name="policy-min-decryption-version" value={minimum} onChange={(event) => setMinimum(event.target.value)}>
            {versions.map((version) => (
              <option key={version.version} value={version.version} disabled={version.version > keyView.primaryVersion}>
                v{version.version}
                {version.version === keyView.primaryVersion ? ' (primary)' : ''}
              </option>
            ))}
          </select>
        </label>
        <div className="form-actions">
          <button className="primary" type="submit" disabled={busy || !validPeriod || !summary}>
            Save policy
          </button>
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
      {minimumVersion > keyView.minDecryptionVersion ? (
        <p className="warning">
          Ciphertexts made under versions older than v{minimumVersion} will no longer decrypt. Re-encrypt them first (the service plane’s re-encrypt does
          it without exposing plaintext).
        </p>
      ) : null}
    </Card>
  );
}

/** Crypto-shredding without the waiting window: a sensitive operation, approved by the quorum with passkeys. */
export function DestroyNow({ name, onRequested, onCancel }: { name: string; onRequested: (operation: PendingOperationView) => void; onCancel: () => void }) {
  const [typed, setTyped] = useState('');
  const { progress, run, busy } = useAction();
  return (
    <section className="card danger-zone" aria-label="Destroy now">
      <h2>Destroy now</h2>
      <p>
        Destroys every version of <strong>{name}</strong> at once, without a waiting window: anything it encrypted can never be decrypted again. This is a
        sensitive operation: your passkey signs the request, and it runs when the quorum of administrators has approved it under <Link to="/approvals">Approvals</Link>.
      </p>
      <form
        className="grid-form destroy-form"
        onSubmit={(event) => {
          event.preventDefault();
          if (typed !== name) return;
          void run('Waiting for your passkey: it signs the request…', () => requestOperation({ kind: 'destroy-key-now', key: name }), () => '').then(
            (operation) => operation && onRequested(operation),
          );
        }}
      >
        <label>
          <span>
            Type <code>{name}</code> to confirm
          </span>
          <input name="confirm-destroy-now" value={typed} onChange={(event) => setTyped(event.target.value)} autoComplete="off" spellCheck={false} />
        </label>
        <div className="form-actions">
          <button className="danger" type="submit" disabled={busy || typed !== name}>
            Request destruction now
          </button>
          <button type="button" onClick={onCancel}>
            Keep the key
          </button>
        </div>
      </form>
      <Status progress={progress} />
    </section>
  );
}
