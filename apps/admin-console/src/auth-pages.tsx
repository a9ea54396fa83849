import { useState } from 'react';
import { startAuthentication, startRegistration } from '@simplewebauthn/browser';
import type { AdminView, SessionView } from '@keyhold/contracts';
import { api, messageOf, setCsrfToken } from './api';
import { navigate, safeNext } from './router';
import { IDLE, type Progress, Status } from './ui';

type OptionsJSON = Parameters<typeof startRegistration>[0]['optionsJSON'];
type AuthOptionsJSON = Parameters<typeof startAuthentication>[0]['optionsJSON'];

interface EnrolmentResult {
  admin: AdminView;
  recoveryCodes: string[];
  csrfToken: string;
  expiresAt: string;
}

/** The token arrives in the URL fragment (never sent to a server); it is read once and wiped from the address bar. */
export function readSetupToken(): string | null {
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  if (location.hash) history.replaceState(null, '', location.pathname);
  return token;
}

export function SetupPage({ token, onSignedIn }: { token: string | null; onSignedIn: (session: SessionView) => void }) {
  const [name, setName] = useState('');
  const [progress, setProgress] = useState<Progress>(IDLE);
  const [result, setResult] = useState<EnrolmentResult | null>(null);
  const [saved, setSaved] = useState(false);

  if (!token) {
    return (
      <main className="auth">
        <h1>Set up Keyhold</h1>
        <p className="status status-error" role="alert">
          This page needs the setup or invitation link Keyhold printed, with its <code>#token=…</code>. Open the whole link again.
        </p>
        <p>
          <a href="/sign-in">Sign in with a passkey instead</a>
        </p>
      </main>
    );
  }

  if (result) {
    return (
      <main className="auth">
        <h1>Save your recovery codes</h1>
        <p>
          Welcome, {result.admin.name}. Your passkey is registered. These ten codes are shown <strong>once</strong>: each lets you
          register a new passkey if you lose this one. Keep them somewhere safe, away from this computer.
        </p>
        <ol className="codes" data-testid="recovery-codes">
          {result.recoveryCodes.map((code) => (
            <li key={code}>
              <code>{code}</code>
            </li>
          ))}
        </ol>
        <label className="check">
          <input type="checkbox" checked={saved} onChange={(event) => setSaved(event.target.checked)} /> I saved them
        </label>
        <button
          className="primary"
          disabled={!saved}
          onClick={() => {
            setResult(null); // the codes leave the page
            navigate('/keys', { replace: true });
          }}
        >
          Continue to Keyhold
        </button>
      </main>
    );
  }

  const register = async () => {
    try {
      setProgress({ kind: 'busy', text: 'Asking the server for registration options…' });
      const options = await api<OptionsJSON>('POST', '/api/v1/enrolment/options', { body: { token, name: name.trim() || undefined }, public: true });
      setProgress({ kind: 'busy', text: 'Waiting for your passkey…' });
      const response = await startRegistration({ optionsJSON: options });
      setProgress({ kind: 'busy', text: 'Registering your passkey…' });
      const enrolled = await api<EnrolmentResult>('POST', '/api/v1/enrolment', { body: { token, response }, public: true });
      setCsrfToken(enrolled.csrfToken);
      onSignedIn({ admin: enrolled.admin, csrfToken: enrolled.csrfToken, expiresAt: enrolled.expiresAt });
      setProgress(IDLE);
      setResult(enrolled);
    } catch (error) {
      setProgress({ kind: 'error', text: messageOf(error) });
    }
  };

  return (
    <main className="auth">
      <h1>Set up Keyhold</h1>
      <p>Register a passkey for this administrator account. Keyhold has no passwords: your passkey is how you sign in.</p>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          void register();
        }}
      >
        <label>
          Your name
          <input name="name" value={name} onChange={(event) => setName(event.target.value)} maxLength={100} autoComplete="name" placeholder="e.g. alice" />
        </label>
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
      const options = await api<AuthOptionsJSON>('POST', '/api/v1/session/options', { public: true });
      const response = await startAuthentication({ optionsJSON: options });
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
      <h1>Sign in to Keyhold</h1>
      <p>Use the passkey you registered for this Keyhold.</p>
      <button className="primary" onClick={() => void signIn()} disabled={progress.kind === 'busy'}>
        Sign in with a passkey
      </button>
      <Status progress={progress} />
    </main>
  );
}
