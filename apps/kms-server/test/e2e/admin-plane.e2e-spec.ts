import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SoftwareAuthenticator } from '../support/software-authenticator';
import { stepUp } from '../support/test-admins';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

interface Session {
  cookie: string;
  csrfToken: string;
}

function cookieFrom(response: { headers: Record<string, unknown> }): string {
  const header = response.headers['set-cookie'];
  const first = Array.isArray(header) ? String(header[0]) : String(header);
  return first.split(';')[0];
}

describe('admin plane: passkeys, sessions, roles', () => {
  let kh: TestKeyhold;
  let alice: SoftwareAuthenticator;
  let aliceSession: Session;
  let aliceRecoveryCodes: string[];

  async function enrol(authenticator: SoftwareAuthenticator, token: string, name?: string) {
    const options = await kh.adminHttp().post('/api/v1/enrolment/options').send({ token, name });
    assert.equal(options.status, 200, options.text);
    const response = await authenticator.createCredential(options.body);
    return kh.adminHttp().post('/api/v1/enrolment').send({ token, response });
  }

  async function signIn(authenticator: SoftwareAuthenticator, overrides?: Parameters<SoftwareAuthenticator['getAssertion']>[1]) {
    const options = await kh.adminHttp().post('/api/v1/session/options');
    assert.equal(options.status, 200, options.text);
    const response = await authenticator.getAssertion(options.body, overrides);
    return { options: options.body, response, answer: await kh.adminHttp().post('/api/v1/session').send({ response }) };
  }

  function tokenOfLink(link: string): string {
    return new URL(link).hash.replace('#token=', '');
  }

  before(async () => {
    kh = await startTestKeyhold({ admin: true });
    alice = new SoftwareAuthenticator({ origin: kh.adminOrigin, rpId: 'localhost' });
  });
  after(() => kh.stop());

  it('serves its OpenAPI document at /docs', async () => {
    const docs = await kh.adminHttp().get('/docs').expect(200);
    assert.equal(docs.body.openapi, '3.1.0');
    assert.ok(docs.body.paths['/api/v1/session']);
    assert.ok(docs.body.paths['/api/v1/keys/{name}/rotate'].post);
  });

  it('prints a one-time setup link on first start; whoever opens it becomes the first admin', async () => {
    const link = kh.server.admin?.setupLink;
    assert.ok(link && link.startsWith(`${kh.adminOrigin}/setup#token=`));
    const enrolled = await enrol(alice, tokenOfLink(link), 'alice');
    assert.equal(enrolled.status, 201, enrolled.text);
    assert.equal(enrolled.body.admin.name, 'alice');
    assert.equal(enrolled.body.admin.role, 'admin');
    assert.equal(enrolled.body.recoveryCodes.length, 10);
    aliceRecoveryCodes = enrolled.body.recoveryCodes;
    const setCookie = String(enrolled.headers['set-cookie']);
    assert.match(setCookie, /^__Host-keyhold_session=/);
    for (const attribute of ['HttpOnly', 'Secure', 'SameSite=Strict', 'Path=/']) assert.ok(setCookie.includes(attribute), attribute);
    aliceSession = { cookie: cookieFrom(enrolled), csrfToken: enrolled.body.csrfToken };

    const again = await kh.adminHttp().post('/api/v1/enrolment/options').send({ token: tokenOfLink(link), name: 'mallory' });
    assert.equal(again.status, 401, 'the setup token is dead once used');
    const rows = await kh.dataSource.query(`SELECT secret_hash FROM keyhold_enrolment_tokens`);
    assert.ok(rows.every((row: { secret_hash: string }) => row.secret_hash.startsWith('$argon2id$')));
    assert.ok(!JSON.stringify(rows).includes(tokenOfLink(link).split('.')[1]));
  });

  it('keeps sessions server-side and demands the CSRF token on changes', async () => {
    const session = await kh.adminHttp({ cookie: aliceSession.cookie }).get('/api/v1/session').expect(200);
    assert.equal(session.body.admin.name, 'alice');
    assert.equal(session.body.csrfToken, aliceSession.csrfToken);
    const noCsrf = await kh.adminHttp({ cookie: aliceSession.cookie }).post('/api/v1/keys').send({ name: 'adm-key', algorithm: 'aes-256-gcm' });
    assert.equal(noCsrf.status, 403);
    const created = await kh.adminHttp(aliceSession).post('/api/v1/keys').send({ name: 'adm-key', algorithm: 'aes-256-gcm' });
    assert.equal(created.status, 201, created.text);
    const anonymous = await kh.adminHttp().get('/api/v1/keys');
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.body.error.code, 'UNAUTHENTICATED');
    const forged = await kh.adminHttp({ cookie: `${aliceSession.cookie}x` }).get('/api/v1/keys');
    assert.equal(forged.status, 401);
  });

  it('manages the whole key lifecycle, with per-version usage figures', async () => {
    const http = kh.adminHttp(aliceSession);
    await kh.http().post('/v1/keys/adm-key/encrypt').send({ plaintext: 'eA==' }).expect(200);
    await http.post('/api/v1/keys/adm-key/rotate').expect(200);
    await http.patch('/api/v1/keys/adm-key').send({ rotationPeriodDays: 30, minDecryptionVersion: 1 }).expect(200);
    await http.post('/api/v1/keys/adm-key/versions/1/disable').expect(200);
    await http.post('/api/v1/keys/adm-key/versions/1/enable').expect(200);
    await http.post('/api/v1/keys/adm-key/versions/1/schedule-destruction').send({ pendingDays: 7 }).expect(200);
    await http.post('/api/v1/keys/adm-key/versions/1/cancel-destruction').expect(200);
    await http.post('/api/v1/keys/adm-key/disable').expect(200);
    await http.post('/api/v1/keys/adm-key/enable').expect(200);
    await http.post('/api/v1/keys/adm-key/schedule-destruction').send({ pendingDays: 30 }).expect(200);
    const cancelled = await http.post('/api/v1/keys/adm-key/cancel-destruction').expect(200);
    assert.equal(cancelled.body.state, 'disabled');
    const key = await http.get('/api/v1/keys/adm-key').expect(200);
    assert.equal(key.body.versions[0].encryptions, 1);
    assert.ok(key.body.versions[0].lastUsedAt);
    assert.equal(key.body.rotationPeriodDays, 30);
  });

  it('signs in with a discoverable passkey, and refuses every forged or replayed answer', async () => {
    const { answer, response } = await signIn(alice);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.body.admin.name, 'alice');

    const replay = await kh.adminHttp().post('/api/v1/session').send({ response });
    assert.equal(replay.status, 401, 'a challenge is used once');

    for (const overrides of [{ origin: 'https://evil.example' }, { rpId: 'evil.example' }, { userVerified: false }]) {
      const refused = await signIn(alice, overrides);
      assert.equal(refused.answer.status, 401, JSON.stringify(overrides));
      assert.equal(refused.answer.body.error.code, 'UNAUTHENTICATED');
    }

    const options = await kh.adminHttp().post('/api/v1/session/options').expect(200);
    kh.clock.advanceMs(5 * 60_000 + 1000);
    const late = await kh.adminHttp().post('/api/v1/session').send({ response: await alice.getAssertion(options.body) });
    assert.equal(late.status, 401, 'challenges expire after five minutes');

    const regression = await signIn(alice, { counter: 1 });
    assert.equal(regression.answer.status, 401, 'a counter that goes backwards is refused');
    const [row] = await kh.dataSource.query(`SELECT counter_regressions FROM keyhold_passkeys`);
    assert.equal(row.counter_regressions, 1, 'and recorded');
  });

  it('invites with a role; roles are enforced on every route family', async () => {
    const roles = ['operator', 'auditor'] as const;
    const sessions: Record<string, Session> = {};
    for (const role of roles) {
      const invite = await kh.adminHttp(aliceSession).post('/api/v1/admins/invitations').send({ role, name: role });
      assert.equal(invite.status, 201, invite.text);
      assert.match(invite.body.link, /\/enrol#token=/);
      const authenticator = new SoftwareAuthenticator({ origin: kh.adminOrigin, rpId: 'localhost' });
      const enrolled = await enrol(authenticator, invite.body.token);
      assert.equal(enrolled.status, 201, enrolled.text);
      assert.equal(enrolled.body.admin.role, role);
      sessions[role] = { cookie: cookieFrom(enrolled), csrfToken: enrolled.body.csrfToken };
      const reused = await kh.adminHttp().post('/api/v1/enrolment/options').send({ token: invite.body.token, name: 'x' });
      assert.equal(reused.status, 401, 'an invitation is single use');
    }
    const operator = kh.adminHttp(sessions.operator);
    const auditor = kh.adminHttp(sessions.auditor);
    await operator.post('/api/v1/keys').send({ name: 'op-key', algorithm: 'aes-256-gcm' }).expect(201);
    await operator.post('/api/v1/keys/op-key/rotate').expect(200);
    assert.equal((await operator.post('/api/v1/admins/invitations').send({ role: 'admin' })).status, 403);
    assert.equal((await auditor.get('/api/v1/keys/op-key')).status, 200);
    assert.equal((await auditor.get('/api/v1/admins')).status, 200);
    assert.equal((await auditor.post('/api/v1/keys/op-key/rotate')).status, 403);
    assert.equal((await auditor.post('/api/v1/keys').send({ name: 'nope', algorithm: 'aes-256-gcm' })).status, 403);
    assert.equal((await auditor.post('/api/v1/admins/invitations').send({ role: 'auditor' })).status, 403);
    for (const [path, body] of [
      ['/api/v1/grants', { identity: 'x', keys: '*', operations: ['read'] }],
      ['/api/v1/certificates', { identity: 'spiffe://x/y' }],
      ['/api/v1/operations', { kind: 'set-quorum', approvals: 1 }],
    ] as const) {
      assert.equal((await operator.post(path).send(body)).status, 403, `operator ${path}`);
      assert.equal((await auditor.post(path).send(body)).status, 403, `auditor ${path}`);
    }
    for (const path of ['/api/v1/grants', '/api/v1/certificates', '/api/v1/operations', '/api/v1/ca']) {
      assert.equal((await auditor.get(path)).status, 200, `auditor reads ${path}`);
    }
    const promoted = await kh.adminHttp(aliceSession).patch(`/api/v1/admins/${(await auditor.get('/api/v1/session')).body.admin.id}`).send({ role: 'operator' });
    assert.equal(promoted.status, 200);
    assert.equal((await auditor.post('/api/v1/keys/op-key/rotate')).status, 200, 'the new role applies at once');
    // alice is the only admin: she cannot give the role away.
    const aliceId = (await kh.adminHttp(aliceSession).get('/api/v1/session').expect(200)).body.admin.id;
    const last = await kh.adminHttp(aliceSession).patch(`/api/v1/admins/${aliceId}`).send({ role: 'operator' });
    assert.equal(last.status, 409, last.text);
    assert.match(last.body.error.message, /last admin/);
    assert.equal((await kh.adminHttp(aliceSession).get('/api/v1/session').expect(200)).body.admin.role, 'admin');
  });

  it('refuses an invitation once it has expired', async () => {
    const invite = await kh.adminHttp(aliceSession).post('/api/v1/admins/invitations').send({ role: 'auditor', name: 'late' }).expect(201);
    kh.clock.advanceMs(72 * 3_600_000 + 1000);
    const expired = await kh.adminHttp().post('/api/v1/enrolment/options').send({ token: invite.body.token });
    assert.equal(expired.status, 401);
    assert.match(expired.body.error.message, /expired/);
    // Everyone's session idled out meanwhile: sign alice in again.
    const { answer } = await signIn(alice);
    aliceSession = { cookie: cookieFrom(answer), csrfToken: answer.body.csrfToken };
  });

  it('adds, renames and removes passkeys, never the last one', async () => {
    const http = kh.adminHttp(aliceSession);
    const list = await http.get('/api/v1/me/passkeys').expect(200);
    assert.equal(list.body.passkeys.length, 1);
    const me = { authenticator: alice, session: aliceSession };
    const onlyOne = await http.delete(`/api/v1/me/passkeys/${list.body.passkeys[0].id}`).send({ stepUp: await stepUp(kh, me, 'remove-passkey', undefined, list.body.passkeys[0].id) });
    assert.equal(onlyOne.status, 409);
    const second = new SoftwareAuthenticator({ origin: kh.adminOrigin, rpId: 'localhost' });
    const options = await http.post('/api/v1/me/passkeys/options').send({ stepUp: await stepUp(kh, me, 'add-passkey') }).expect(200);
    const added = await http.post('/api/v1/me/passkeys').send({ response: await second.createCredential(options.body), name: 'backup key' });
    assert.equal(added.status, 201, added.text);
    const renamed = await http.patch(`/api/v1/me/passkeys/${added.body.id}`).send({ name: 'desk key' }).expect(200);
    assert.ok(renamed.body.passkeys.some((p: { name: string }) => p.name === 'desk key'));
    assert.equal((await signIn(second)).answer.status, 200, 'the second passkey signs in');
    const removed = await http.delete(`/api/v1/me/passkeys/${list.body.passkeys[0].id}`).send({ stepUp: await stepUp(kh, me, 'remove-passkey', undefined, list.body.passkeys[0].id) }).expect(200);
    assert.equal(removed.body.passkeys.length, 1);
    assert.equal((await signIn(alice)).answer.status, 401, 'a removed passkey no longer signs in');
    alice = second;
  });

  it('lets an admin who lost every passkey recover with a recovery code, once', async () => {
    const code = aliceRecoveryCodes[0];
    const redeemed = await kh.adminHttp().post('/api/v1/recovery').send({ name: 'alice', code });
    assert.equal(redeemed.status, 200, redeemed.text);
    const fresh = new SoftwareAuthenticator({ origin: kh.adminOrigin, rpId: 'localhost' });
    const enrolled = await enrol(fresh, redeemed.body.token);
    assert.equal(enrolled.status, 201, enrolled.text);
    assert.equal(enrolled.body.admin.name, 'alice');
    assert.equal(enrolled.body.recoveryCodes, null);
    assert.equal((await signIn(fresh)).answer.status, 200);
    const reused = await kh.adminHttp().post('/api/v1/recovery').send({ name: 'alice', code });
    assert.equal(reused.status, 401, 'a recovery code is used up');
    const wrong = await kh.adminHttp().post('/api/v1/recovery').send({ name: 'alice', code: 'AAAAA-BBBBB-CCCCC-DDDDD' });
    assert.equal(wrong.status, 401);
    aliceSession = { cookie: cookieFrom(enrolled), csrfToken: enrolled.body.csrfToken };
  });

  it('times sessions out when idle, and signs out everywhere', async () => {
    const { answer } = await signIn(alice);
    const other: Session = { cookie: cookieFrom(answer), csrfToken: answer.body.csrfToken };
    await kh.adminHttp(other).get('/api/v1/session').expect(200);
    const out = await kh.adminHttp(aliceSession).post('/api/v1/session/sign-out-everywhere').expect(200);
    assert.ok(out.body.revokedSessions >= 2);
    assert.equal((await kh.adminHttp(other).get('/api/v1/session')).status, 401);
    assert.equal((await kh.adminHttp(aliceSession).get('/api/v1/session')).status, 401);

    const again = await signIn(alice);
    const idle: Session = { cookie: cookieFrom(again.answer), csrfToken: again.answer.body.csrfToken };
    kh.clock.advanceMs(31 * 60_000);
    const timedOut = await kh.adminHttp(idle).get('/api/v1/session');
    assert.equal(timedOut.status, 401);
    assert.match(timedOut.body.error.message, /inactivity/);
  });

  it('keeps the planes apart: no service certificate opens the admin plane, no admin session the service plane', async () => {
    const serviceCall = await kh.adminHttp().get('/api/v1/keys').cert(kh.operator.cert).key(kh.operator.key);
    assert.equal(serviceCall.status, 401);
    const { answer } = await signIn(alice);
    const cookieOnly = await kh.http(null).get('/v1/keys').set('cookie', cookieFrom(answer)).catch((error: Error) => error);
    assert.ok(cookieOnly instanceof Error, 'the service listener refuses the TLS handshake without a client certificate');
  });
});
