import { type ReactNode, useEffect, useState } from 'react';
import type { SessionView } from '@keyhold/contracts';
import { AccountPage } from './account-page';
import { AdminsPage } from './admins-page';
import { api, messageOf, onUnauthorized, setCsrfToken } from './api';
import { ApprovalsPage } from './approvals-page';
import { AuditPage } from './audit-page';
import { EnrolPage, RecoveryPage, SealedNotice, SignInPage, readLinkToken } from './auth-pages';
import { KeyPage, KeysPage } from './keys-pages';
import { MasterKeyPage } from './master-key-page';
import { canAdminister, canAudit, canChangeKeys, canReadMasterKey } from './permissions';
import { currentPath, navigate, useLocation } from './router';
import { ServicesPage } from './services-page';
import { UnsealPage } from './unseal-page';
import { Link } from './ui';

type SessionState = { kind: 'loading' } | { kind: 'signed-out' } | { kind: 'signed-in'; session: SessionView } | { kind: 'error'; message: string };

/** Pages for the signed-out: the links with a token in their fragment, sign-in and recovery. */
const LINK_PATHS = ['/setup', '/enrol'];
const PUBLIC_PATHS = [...LINK_PATHS, '/sign-in', '/recover', '/unseal'];

/** The screens in the top bar; a screen with `shownTo` is offered to those roles only (the server decides anyway). */
const SCREENS: Array<{ path: string; label: string; shownTo?: (role: SessionView['admin']['role']) => boolean }> = [
  { path: '/keys', label: 'Keys' },
  { path: '/approvals', label: 'Approvals' },
  { path: '/services', label: 'Services' },
  { path: '/admins', label: 'Admins' },
  { path: '/master-key', label: 'Master key', shownTo: canReadMasterKey },
  { path: '/audit', label: 'Audit', shownTo: canAudit },
];

function toSignIn(): void {
  const here = currentPath();
  if (PUBLIC_PATHS.includes(location.pathname)) return;
  navigate(`/sign-in?next=${encodeURIComponent(here)}`, { replace: true });
}

export function App() {
  const { pathname, search } = useLocation();
  const [session, setSession] = useState<SessionState>({ kind: 'loading' });
  const [linkToken, setLinkToken] = useState(() => (LINK_PATHS.includes(location.pathname) ? readLinkToken() : null));

  useEffect(() => {
    onUnauthorized(() => {
      setSession({ kind: 'signed-out' });
      toSignIn();
    });
    if (PUBLIC_PATHS.includes(location.pathname) && location.pathname !== '/sign-in') {
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
        else if (location.pathname === '/sign-in') setSession({ kind: 'signed-out' });
      });
  }, []);

  const signedIn = (current: SessionView) => setSession({ kind: 'signed-in', session: current });
  /** A link's token is used up once its passkey is registered: it leaves the page. */
  const enrolled = (current: SessionView) => {
    setLinkToken(null);
    signedIn(current);
  };
  const next = search.get('next');

  if (pathname === '/setup') return <Shell session={null}>{<EnrolPage kind="setup" token={linkToken} onSignedIn={enrolled} />}</Shell>;
  if (pathname === '/enrol') return <Shell session={null}>{<EnrolPage kind="invitation" token={linkToken} onSignedIn={enrolled} />}</Shell>;
  if (pathname === '/sign-in') return <Shell session={null}>{<SignInPage next={next} onSignedIn={signedIn} />}</Shell>;
  if (pathname === '/unseal') return <Shell session={null}>{<UnsealPage />}</Shell>;
  if (pathname === '/recover') return <Shell session={null}>{<RecoveryPage next={next} onSignedIn={signedIn} />}</Shell>;
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

  const me = session.session.admin;
  const keyMatch = /^\/keys\/([^/]+)$/.exec(pathname);
  let page: ReactNode;
  if (keyMatch) page = <KeyPage key={keyMatch[1]} name={decodeURIComponent(keyMatch[1])} canChange={canChangeKeys(me.role)} canAdminister={canAdminister(me.role)} />;
  else if (pathname === '/keys' || pathname === '/') page = <KeysPage canChange={canChangeKeys(me.role)} />;
  else if (pathname === '/approvals') page = <ApprovalsPage key={search.toString()} me={me} canApprove={canAdminister(me.role)} />;
  else if (pathname === '/services') page = <ServicesPage canAdminister={canAdminister(me.role)} />;
  else if (pathname === '/admins') page = <AdminsPage me={me} canAdminister={canAdminister(me.role)} />;
  else if (pathname === '/audit') page = <AuditPage canAdminister={canAdminister(me.role)} />;
  else if (pathname === '/master-key') page = <MasterKeyPage canAdminister={canAdminister(me.role)} />;
  else if (pathname === '/account') page = <AccountPage session={session.session} />;
  else
    page = (
      <main className="page">
        <h1>Not found</h1>
        <p>
          There is no page at <code>{pathname}</code>. <Link to="/keys">Go to keys</Link>.
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
          <nav className="nav" aria-label="Screens">
            {SCREENS.filter((screen) => !screen.shownTo || screen.shownTo(session.admin.role)).map((screen) => (
              <Link key={screen.path} to={screen.path} current={location.pathname.startsWith(screen.path)}>
                {screen.label}
              </Link>
            ))}
          </nav>
        ) : null}
        {session ? (
          <div className="who">
            <Link to="/account" current={location.pathname === '/account'}>
              <span data-testid="who">
                {session.admin.name} · {session.admin.role}
              </span>
            </Link>
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
      {session ? (
        <div className="sealed-banner">
          <SealedNotice />
        </div>
      ) : null}
      {children}
    </div>
  );
}
