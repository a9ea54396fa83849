import { SoftwareAuthenticator } from './software-authenticator';
import type { TestKeyhold } from './test-keyhold';

export interface TestAdmin {
  id: string;
  name: string;
  authenticator: SoftwareAuthenticator;
  session: { cookie: string; csrfToken: string };
}

/** The `name=value` of the session cookie a response set. */
export function sessionCookieOf(response: { headers: Record<string, unknown> }): string {
  const header = response.headers['set-cookie'];
  return (Array.isArray(header) ? String(header[0]) : String(header)).split(';')[0];
}

/** The token of the setup link the server printed at its first start. */
export function setupTokenOf(kh: TestKeyhold): string {
  const link = kh.server.admin?.setupLink;
  if (!link) throw new Error('the server printed no setup link (start it with admin: true, on an empty database)');
  return new URL(link).hash.replace('#token=', '');
}

/** Enrols an administrator with a setup or invitation token and a fresh software passkey, through the real API. */
export async function enrolAdmin(kh: TestKeyhold, name: string, token: string): Promise<TestAdmin> {
  const authenticator = new SoftwareAuthenticator({ origin: kh.adminOrigin, rpId: 'localhost' });
  const options = await kh.adminHttp().post('/api/v1/enrolment/options').send({ token, name }).expect(200);
  const enrolled = await kh
    .adminHttp()
    .post('/api/v1/enrolment')
    .send({ token, response: await authenticator.createCredential(options.body) })
    .expect(201);
  return { id: enrolled.body.admin.id, name, authenticator, session: { cookie: sessionCookieOf(enrolled), csrfToken: enrolled.body.csrfToken } };
}

/** Invites an administrator with `role` and enrols them. */
export async function inviteAdmin(kh: TestKeyhold, inviter: TestAdmin, name: string, role: 'admin' | 'operator' | 'auditor'): Promise<TestAdmin> {
  const invite = await kh.adminHttp(inviter.session).post('/api/v1/admins/invitations').send({ role, name }).expect(201);
  return enrolAdmin(kh, name, invite.body.token);
}

/** Signs in with a passkey of `authenticator` through the real API; the session of the answer. */
export async function signIn(kh: TestKeyhold, authenticator: SoftwareAuthenticator): Promise<TestAdmin['session']> {
  const options = await kh.adminHttp().post('/api/v1/session/options').send({}).expect(200);
  const signedIn = await kh.adminHttp().post('/api/v1/session').send({ response: await authenticator.getAssertion(options.body) }).expect(200);
  return { cookie: sessionCookieOf(signedIn), csrfToken: signedIn.body.csrfToken };
}

export type StepUpAction = 'add-passkey' | 'remove-passkey' | 'recovery-codes';

/** The body of a step-up options request: a removal names the passkey it removes. */
export function stepUpRequest(action: StepUpAction, passkeyId?: string): object {
  if (action !== 'remove-passkey') return { action };
  if (!passkeyId) throw new Error('a step-up to remove a passkey names the passkey');
  return { action, passkeyId };
}

/**
 * A step-up for `action` (for a removal, of `passkeyId`): the options from the real API, answered by
 * `authenticator` (by default the admin's own); the assertion to send as `stepUp`.
 */
export async function stepUp(
  kh: TestKeyhold,
  admin: Pick<TestAdmin, 'authenticator' | 'session'>,
  action: StepUpAction,
  authenticator: SoftwareAuthenticator = admin.authenticator,
  passkeyId?: string,
): Promise<Awaited<ReturnType<SoftwareAuthenticator['getAssertion']>>> {
  const options = await kh.adminHttp(admin.session).post('/api/v1/me/step-up/options').send(stepUpRequest(action, passkeyId)).expect(200);
  return authenticator.getAssertion(options.body);
}
