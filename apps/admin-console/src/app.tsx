import { type ReactNode, useEffect, useState } from 'react';
import type { SessionView } from '@keyhold/contracts';
import { api, messageOf, onUnauthorized, setCsrfToken } from './api';
import { SetupPage, SignInPage, readSetupToken } from './auth-pages';
import { KeyPage, KeysPage } from './keys-pages';
import { currentPath, navigate, useLocation } from './router';

type SessionState = { kind: 'loading' } | { kind: 'signed-out' } | { kind: 'signed-in'; session: SessionView } | { kind: 'error'; message: string };

const PUBLIC_PATHS = ['/setup', '/sign-in'];

function toSignIn(): void {
  const here = currentPath();
  if (PUBLIC_PATHS.some((path) => location.pathname.startsWith(path))) return;
  navigate(`/sign-in?next=${encodeURIComponent(here)}`, { replace: true });
}

export function App() {
  const { pathname, search } = useLocation();
  const [session, setSession] = useState<SessionState>({ kind: 'loading' });
  const [setupToken] = useState(() => (location.pathname === '/setup' ? readSetupToken() : null));

  useEffect(() => {
    onUnauthorized(() => {
      setSession({ kind: 'signed-out' });
      toSignIn();
    });
    if (location.pathname === '/setup') {
      setSession({ kind: 'signed-out' });
      return;
    }
    api<SessionView>('GET', '/api/v1/session')
      .then((current) => {
        setCsrfToken(current.csrfToken);
        setSession({ kind: 'signed-in', session: current });
        if (location.pathname === '/') navigate('/keys', { replace: true });
      })
      .catch((error: unknown) => {
        if ((error as { status?: number }).status !== 401) setSession({ kind: 'error', message: messageOf(error) });
      });
  }, []);

  const signedIn = (current: SessionView) => setSession({ kind: 'signed-in', session: current });

  if (pathname === '/setup') return <Shell session={null}>{<SetupPage token={setupToken} onSignedIn={signedIn} />}</Shell>;
  if (pathname === '/sign-in') return <Shell session={null}>{<SignInPage next={search.get('next')} onSignedIn={signedIn} />}</Shell>;
  if (session.kind === 'loading') return <Shell session={null}>{<p className="page muted">Loading…</p>}</Shell>;
  if (session.kind === 'error') {
    return (
      <Shell session={null}>
        <p className="page status status-error" role="alert">
          {session.message}
        </p>
      </Shell>
    );
  }
  if (session.kind === 'signed-out') return <Shell session={null}>{<p className="page muted">Redirecting to sign-in…</p>}</Shell>;

  const canChange = session.session.admin.role !== 'auditor';
  const keyMatch = /^\/keys\/([^/]+)$/.exec(pathname);
  let page;
  if (keyMatch) page = <KeyPage key={keyMatch[1]} name={decodeURIComponent(keyMatch[1])} canChange={canChange} />;
  else if (pathname === '/keys' || pathname === '/') page = <KeysPage canChange={canChange} />;
  else
    page = (
      <main className="page">
        <h1>Not found</h1>
        <p>
          There is no page at <code>{pathname}</code>. <a href="/keys">Go to keys</a>.
        </p>
      </main>
    );

  return (
    <Shell
      session={session.session}
      onSignOut={async () => {
        try {
          await api('DELETE', '/api/v1/session');
        } catch {
          // Signed out either way: an expired session needs no sign-out.
        }
        setCsrfToken(null);
        setSession({ kind: 'signed-out' });
        navigate('/sign-in', { replace: true });
      }}
    >
      {page}
    </Shell>
  );
}

function Shell({ session, onSignOut, children }: { session: SessionView | null; onSignOut?: () => Promise<void>; children: ReactNode }) {
  const [signingOut, setSigningOut] = useState(false);
  return (
    <div className="shell">
      <header className="topbar">
        <a
          className="brand"
          href="/keys"
          onClick={(event) => {
            event.preventDefault();
            if (session) navigate('/keys');
          }}
        >
          <img src="/favicon.svg" alt="" width={24} height={24} /> Keyhold
        </a>
        {session ? (
          <nav className="nav">
            <a
              href="/keys"
              className={location.pathname.startsWith('/keys') ? 'active' : ''}
              onClick={(event) => {
                event.preventDefault();
                navigate('/keys');
              }}
            >
              Keys
            </a>
          </nav>
        ) : null}
        {session ? (
          <div className="who">
            <span className="muted" data-testid="who">
              {session.admin.name} · {session.admin.role}
            </span>
            <button
              onClick={() => {
                setSigningOut(true);
                void onSignOut?.().finally(() => setSigningOut(false));
              }}
              disabled={signingOut}
            >
              {signingOut ? 'Signing out…' : 'Sign out'}
            </button>
          </div>
        ) : null}
      </header>
      {children}
    </div>
  );
}
