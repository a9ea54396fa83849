import { useState } from 'react';
import type { AdminView, RecoveryTokenView, SealStatusView, SessionView } from '@keyhold/contracts';
import { api, messageOf, setCsrfToken } from './api';
import { navigate, safeNext } from './router';
import { IDLE, Link, type Progress, Status, useResource } from './ui';
import { createPasskey, signWithPasskey } from './webauthn';

interface EnrolmentResult {
  admin: AdminView;
  recoveryCodes: string[] | null;
  csrfToken: string;
  expiresAt: string;
}

/** How one came by an enrolment token: the first-admin setup link, an invitation link, or a recovery code. */
export type EnrolmentKind = 'setup' | 'invitation' | 'recovery';

const ENROLMENT_TEXT: Record<EnrolmentKind, { title: string; intro: string }> = {
  setup: { title: 'Set up Keyhold', intro: 'Register a passkey for the first administrator. Keyhold has no passwords: your passkey is how you sign in.' },
  invitation: {
    title: 'Accept your invitation',
    intro: 'You were invited to administer this Keyhold. Register a passkey on this device: Keyhold has no passwords, your passkey is how you sign in.',
  },
  recovery: { title: 'Register a new passkey', intro: 'Your recovery code was accepted. Register a passkey on this device to sign in.' },
};

/** The token arrives in the URL fragment (never sent to a server); it is read once and wiped from the address bar. */
export function readLinkToken(): string | null {
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  if (location.hash) history.replaceState(null, '', location.pathname);
  return token;
}

/** Recovery codes, shown once: they leave the page when the user says they are saved. */
export function RecoveryCodes({ codes, onSaved, action }: { codes: string[]; onSaved: () => void; action: string }) {
  const [saved, setSaved] = useState(false);
  return (
    <div className="recovery-codes">
      <p>
        These {codes.length} codes are shown <strong>once</strong>: each lets you register a new passkey if you lose yours, and works once. Keep them
        somewhere safe, away from this computer.
      </p>
      <ol className="codes" data-testid="recovery-codes">
        {codes.map((code) => (
          <li key={code}>
            <code>{code}</code>
          </li>
        ))}
      </ol>
      <label className="check">
        <input type="checkbox" checked={saved} onChange={(event) => setSaved(event.target.checked)} /> I saved them
      </label>
      <button className="primary" disabled={!saved} onClick={onSaved}>
        {action}
      </button>
    </div>
  );
}

/** Registers a passkey with an enrolment token: first admin, invited admin, or an admin recovering their account. */
export function EnrolPage({
  kind,
  token,
  next,
  onSignedIn,
}: {
  kind: EnrolmentKind;
  token: string | null;
  next?: string | null;
  onSignedIn: (session: SessionView) => void;
}) {
  const [name, setName] = useState('');
  const [progress, setProgress] = useState<Progress>(IDLE);
  const [result, setResult] = useState<EnrolmentResult | null>(null);
  const text = ENROLMENT_TEXT[kind];

  if (result?.recoveryCodes) {
    return (
      <main className="auth">
        <h1>Save your recovery codes</h1>
        <p>
          Welcome, {result.admin.name}. Your passkey is registered and you are signed in as <strong>{result.admin.role}</strong>.
        </p>
        <RecoveryCodes
          codes={result.recoveryCodes}
          action="Continue to Keyhold"
          onSaved={() => {
            setResult(null); // the codes leave the page
            navigate(safeNext(next ?? null), { replace: true });
          }}
        />
      </main>
    );
  }

  if (!token) {
    return (
      <main className="auth">
        <h1>{text.title}</h1>
        <p className="status status-error" role="alert">
          This page needs the whole setup or invitation link, with its <code>#token=…</code>. Open the link you were given again, or ask an administrator
          for a new invitation.
        </p>
        <p>
          <Link to="/sign-in">Sign in with a passkey instead</Link>
        </p>
      </main>
    );
  }

  const register = async () => {
    try {
      setProgress({ kind: 'busy', text: 'Asking the server for registration options…' });
      const options = await api('POST', '/api/v1/enrolment/options', { body: { token, name: name.trim() || undefined }, public: true });
      setProgress({ kind: 'busy', text: 'Waiting for your passkey…' });
      const response = await createPasskey(options);
      setProgress({ kind: 'busy', text: 'Registering your passkey…' });
      const enrolled = await api<EnrolmentResult>('POST', '/api/v1/enrolment', { body: { token, response }, public: true });
      setCsrfToken(enrolled.csrfToken);
      onSignedIn({ admin: enrolled.admin, csrfToken: enrolled.csrfToken, expiresAt: enrolled.expiresAt });
      setProgress(IDLE);
      if (enrolled.recoveryCodes) setResult(enrolled);
      else navigate(safeNext(next ?? null), { replace: true });
    } catch (error) {
      setProgress({ kind: 'error', text: messageOf(error) });
    }
  };

  return (
    <main className="auth">
      <h1>{text.title}</h1>
      <p>{text.intro}</p>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          void register();
        }}
      >
        {kind === 'recovery' ? null : (
          <label>
            Your name
            <input name="name" value={name} onChange={(event) => setName(event.target.value)} maxLength={100} autoComplete="name" placeholder="e.g. alice" />
            {kind === 'invitation' ? <span className="muted small">If the invitation already names you, that name is kept.</span> : null}
          </label>
        )}
        <button className="primary" type="submit" disabled={progress.kind === 'busy'}>
          Create passkey
        </button>
      </form>
      <Status progress={progress} />
    </main>
  );
}

export function SignInPage({ next, onSignedIn }: { next: string | null; onSignedIn: (session: SessionView) => void }) {
  const [progress, setProgress] = useState<Progress>(IDLE);
  const signIn = async () => {
    try {
      setProgress({ kind: 'busy', text: 'Waiting for your passkey…' });
      const options = await api('POST', '/api/v1/session/options', { public: true });
      const response = await signWithPasskey(options);
      setProgress({ kind: 'busy', text: 'Signing in…' });
      const session = await api<SessionView>('POST', '/api/v1/session', { body: { response }, public: true });
      setCsrfToken(session.csrfToken);
      onSignedIn(session);
      navigate(safeNext(next), { replace: true });
    } catch (error) {
      setProgress({ kind: 'error', text: messageOf(error) });
    }
  };
  return (
    <main className="auth">
      <SealedNotice />
      <h1>Sign in to Keyhold</h1>
      <p>Use the passkey you registered for this Keyhold.</p>
      <button className="primary" onClick={() => void signIn()} disabled={progress.kind === 'busy'}>
        Sign in with a passkey
      </button>
      <Status progress={progress} />
      <p className="muted small auth-footer">
        Lost your passkey? <Link to={next ? `/recover?next=${encodeURIComponent(next)}` : '/recover'}>Use a recovery code</Link>
      </p>
    </main>
  );
}

/** A recovery code (with one's administrator name) buys a one-time enrolment token, then a new passkey. */
export function RecoveryPage({ next, onSignedIn }: { next: string | null; onSignedIn: (session: SessionView) => void }) {
  const [name, setName] = useState('');
  const [code, setCode] = useState('');
  const [token, setToken] = useState<string | null>(null);
  const [progress, setProgress] = useState<Progress>(IDLE);

  if (token) return <EnrolPage kind="recovery" token={token} next={next} onSignedIn={onSignedIn} />;

  const redeem = async () => {
    try {
      setProgress({ kind: 'busy', text: 'Checking the recovery code…' });
      const answer = await api<RecoveryTokenView>('POST', '/api/v1/recovery', { body: { name: name.trim(), code: code.trim() }, public: true });
      setCode(''); // used up: it leaves the page
      setToken(answer.token);
    } catch (error) {
      setProgress({ kind: 'error', text: messageOf(error) });
    }
  };

  return (
    <main className="auth">
      <h1>Sign in with a recovery code</h1>
      <p>Each of the recovery codes you saved when you enrolled works once. It lets you register a new passkey on this device.</p>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          void redeem();
        }}
      >
        <label>
          Your administrator name
          <input name="name" value={name} onChange={(event) => setName(event.target.value)} maxLength={100} autoComplete="username" required />
        </label>
        <label>
          Recovery code
          <input name="code" value={code} onChange={(event) => setCode(event.target.value)} autoComplete="off" spellCheck={false} required minLength={10} maxLength={64} />
        </label>
        <button className="primary" type="submit" disabled={progress.kind === 'busy'}>
          Continue
        </button>
      </form>
      <Status progress={progress} />
      <p className="muted small auth-footer">
        <Link to="/sign-in">Sign in with a passkey instead</Link>
      </p>
    </main>
  );
}

/** While Keyhold is sealed, every key operation fails: say so first, and where to unseal it. */
export function SealedNotice() {
  const { data } = useResource<SealStatusView>('/api/v1/seal', 'the seal status');
  if (!data?.sealed) return null;
  return (
    <p className="status status-error" role="status" data-testid="sealed-notice">
      Keyhold is sealed: key operations are refused until it is unsealed. <Link to="/unseal">Unseal it</Link>
    </p>
  );
}
