import { type ReactNode, useCallback, useEffect, useState } from 'react';
import { api, messageOf } from './api';
import { STATE_LABELS } from './format';
import { navigate } from './router';

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

/**
 * One action's progress: `run` shows `busy` while the work runs, then the result `done` describes, or the error's
 * own message. It answers the work's value, or undefined when it failed.
 */
export function useAction(initial: Progress = IDLE) {
  const [progress, setProgress] = useState<Progress>(initial);
  const run = useCallback(async <T,>(busy: string, work: () => Promise<T>, done: (value: T) => string): Promise<T | undefined> => {
    setProgress({ kind: 'busy', text: busy });
    try {
      const value = await work();
      setProgress({ kind: 'ok', text: done(value) });
      return value;
    } catch (error) {
      setProgress({ kind: 'error', text: messageOf(error) });
      return undefined;
    }
  }, []);
  return { progress, setProgress, run, busy: progress.kind === 'busy' };
}

/** A GET of the admin API, with its loading state and error, reloadable. */
export function useResource<T>(path: string, what: string) {
  const [data, setData] = useState<T | null>(null);
  const [progress, setProgress] = useState<Progress>({ kind: 'busy', text: `Loading ${what}…` });
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    let live = true;
    api<T>('GET', path)
      .then((loaded) => {
        if (!live) return;
        setData(loaded);
        setProgress(IDLE);
      })
      .catch((error: unknown) => live && setProgress({ kind: 'error', text: messageOf(error) }));
    return () => {
      live = false;
    };
  }, [path, generation]);
  const reload = useCallback(() => setGeneration((value) => value + 1), []);
  return { data, setData, progress, reload };
}

/** A link inside the console: history navigation, but a real href for new tabs. */
export function Link({ to, children, className, current }: { to: string; children: ReactNode; className?: string; current?: boolean }) {
  return (
    <a
      href={to}
      className={current ? `${className ?? ''} active`.trim() : className}
      aria-current={current ? 'page' : undefined}
      onClick={(event) => {
        if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
        event.preventDefault();
        navigate(to);
      }}
    >
      {children}
    </a>
  );
}

export function StateBadge({ state }: { state: string }) {
  return <span className={`badge badge-${state}`}>{STATE_LABELS[state] ?? state}</span>;
}

export function Card({ title, children, actions, testId }: { title?: ReactNode; children: ReactNode; actions?: ReactNode; testId?: string }) {
  return (
    <section className="card" data-testid={testId}>
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

/** A URI or pattern that may wrap after each slash, not in the middle of a word. */
export function UriText({ value }: { value: string }) {
  const parts = value.split(/(?<=\/)/);
  return (
    <code className="uri">
      {parts.map((part, index) => (
        <span key={index}>
          {part}
          {index < parts.length - 1 ? <wbr /> : null}
        </span>
      ))}
    </code>
  );
}

/** Said once on a page whose actions one's role may not take: the buttons are gone, and the server would refuse them anyway. */
export function ReadOnlyNote({ children = 'Your role reads only: actions are not shown.' }: { children?: ReactNode }) {
  return (
    <p className="muted small read-only" data-testid="read-only">
      {children}
    </p>
  );
}
