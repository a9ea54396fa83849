import type { ReactNode } from 'react';
import { STATE_LABELS } from './format';

export type Progress = { kind: 'idle' } | { kind: 'busy'; text: string } | { kind: 'ok'; text: string } | { kind: 'error'; text: string };

export const IDLE: Progress = { kind: 'idle' };

/** Progress and the result of an action; errors carry the API's own message. */
export function Status({ progress }: { progress: Progress }) {
  if (progress.kind === 'idle') return null;
  if (progress.kind === 'error') {
    return (
      <p className="status status-error" role="alert" data-testid="status">
        {progress.text}
      </p>
    );
  }
  return (
    <p className={`status status-${progress.kind}`} role="status" data-testid="status">
      {progress.kind === 'busy' ? <span className="spinner" aria-hidden="true" /> : null}
      {progress.text}
    </p>
  );
}

export function StateBadge({ state }: { state: string }) {
  return <span className={`badge badge-${state}`}>{STATE_LABELS[state] ?? state}</span>;
}

export function Card({ title, children, actions }: { title?: ReactNode; children: ReactNode; actions?: ReactNode }) {
  return (
    <section className="card">
      {title || actions ? (
        <header className="card-header">
          {title ? <h2>{title}</h2> : <span />}
          {actions}
        </header>
      ) : null}
      {children}
    </section>
  );
}
