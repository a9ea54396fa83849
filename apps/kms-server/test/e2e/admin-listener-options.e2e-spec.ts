import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SoftwareAuthenticator } from '../support/software-authenticator';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

describe('admin listener options: a required client certificate, and the absolute session timeout', () => {
  let kh: TestKeyhold;
  before(async () => {
    kh = await startTestKeyhold({ admin: true, adminRequiresClientCertificate: true });
  });
  after(() => kh.stop());

  it('refuses a connection without a client certificate when configured to require one', async () => {
    const refused = await kh.adminHttp().get('/docs').catch((error: Error) => error);
    assert.ok(refused instanceof Error, 'the TLS handshake fails without a certificate');
    const allowed = await kh.adminHttp().get('/docs').cert(kh.operator.cert).key(kh.operator.key);
    assert.equal(allowed.status, 200);
  });

  it('ends a session after 12 hours even when it is used every few minutes', async () => {
    const withCert = <T extends { cert(c: string): T; key(k: string): T }>(test: T) => test.cert(kh.operator.cert).key(kh.operator.key);
    const token = new URL(kh.server.admin?.setupLink as string).hash.replace('#token=', '');
    const authenticator = new SoftwareAuthenticator({ origin: kh.adminOrigin, rpId: 'localhost' });
    const options = await withCert(kh.adminHttp().post('/api/v1/enrolment/options')).send({ token, name: 'root' }).expect(200);
    const enrolled = await withCert(kh.adminHttp().post('/api/v1/enrolment')).send({ token, response: await authenticator.createCredential(options.body) }).expect(201);
    const session = { cookie: String(enrolled.headers['set-cookie']).split(';')[0] };
    for (let minutes = 0; minutes < 12 * 60 - 25; minutes += 25) {
      kh.clock.advanceMs(25 * 60_000);
      assert.equal((await withCert(kh.adminHttp(session).get('/api/v1/session'))).status, 200, `after ${minutes + 25} minutes`);
    }
    kh.clock.advanceMs(30 * 60_000);
    const expired = await withCert(kh.adminHttp(session).get('/api/v1/session'));
    assert.equal(expired.status, 401);
    assert.match(expired.body.error.message, /expired/);
  });
});
