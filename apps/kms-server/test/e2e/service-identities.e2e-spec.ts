import 'reflect-metadata';
import assert from 'node:assert/strict';
import { X509Certificate, webcrypto } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as x509 from '@peculiar/x509';
import { enrolAdmin, setupTokenOf } from '../support/test-admins';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

async function eventually(check: () => Promise<boolean>, what: string, withinMs = 1000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.fail(`not within ${withinMs} ms: ${what}`);
}

describe('service identities: grants in Postgres, Keyhold-issued certificates, revocation', () => {
  let kh: TestKeyhold;
  let session: { cookie: string; csrfToken: string };

  before(async () => {
    kh = await startTestKeyhold({ admin: true });
    session = (await enrolAdmin(kh, 'root', setupTokenOf(kh))).session;
    await kh.http().post('/v1/keys').send({ name: 'pay-orders', algorithm: 'aes-256-gcm' }).expect(201);
  });
  after(() => kh.stop());

  it('issues a certificate for a service identity, which then works on the service listener within its grants', async () => {
    const admin = kh.adminHttp(session);
    const grant = await admin
      .post('/api/v1/grants')
      .send({ identity: 'spiffe://prod/ns/payments/*', keys: 'pay-*', operations: ['encrypt', 'decrypt'] });
    assert.equal(grant.status, 201, grant.text);
    const issued = await admin.post('/api/v1/certificates').send({ identity: 'spiffe://prod/ns/payments/sa/api' });
    assert.equal(issued.status, 201, issued.text);
    assert.match(issued.body.certificatePem, /BEGIN CERTIFICATE/);
    assert.match(issued.body.privateKeyPem, /BEGIN PRIVATE KEY/);
    const notAfter = Date.parse(issued.body.certificate.notAfter);
    assert.ok(Math.abs(notAfter - (Date.now() + 24 * 3_600_000)) < 5 * 60_000, 'short-lived: 24 h by default');
    const [stored] = await kh.dataSource.query(`SELECT * FROM keyhold_service_certificates`);
    assert.ok(!JSON.stringify(stored).includes('PRIVATE KEY'), 'the generated private key is not kept');
    const [ca] = await kh.dataSource.query(`SELECT sealed_private_key FROM keyhold_certificate_authority`);
    assert.ok(!ca.sealed_private_key.toString('latin1').includes('PRIVATE KEY'), 'the CA key is stored sealed');

    const service = { cert: issued.body.certificatePem, key: issued.body.privateKeyPem };
    const encrypted = await kh.http(service).post('/v1/keys/pay-orders/encrypt').send({ plaintext: 'cGF5' });
    assert.equal(encrypted.status, 200, encrypted.text);
    const notGranted = await kh.http(service).post('/v1/keys/pay-orders/rotate');
    assert.equal(notGranted.status, 403);

    const revoked = await admin.post(`/api/v1/certificates/${issued.body.certificate.serialNumber}/revoke`).send({ reason: 'key compromise' });
    assert.equal(revoked.status, 200, revoked.text);
    assert.ok(revoked.body.revokedAt);
    await eventually(
      async () => (await kh.http(service).post('/v1/keys/pay-orders/encrypt').send({ plaintext: 'cGF5' })).status === 401,
      'a revoked certificate is refused',
    );
  });

  it('sees grant changes within a second, and refuses invalid grants and identities', async () => {
    const admin = kh.adminHttp(session);
    const issued = await admin.post('/api/v1/certificates').send({ identity: 'spiffe://prod/ns/reports/sa/batch', validityHours: 1 }).expect(201);
    const service = { cert: issued.body.certificatePem, key: issued.body.privateKeyPem };
    assert.equal((await kh.http(service).get('/v1/keys/pay-orders')).status, 404, 'no grant yet: the key is invisible');
    const grant = await admin.post('/api/v1/grants').send({ identity: 'spiffe://prod/ns/reports/*', keys: '*', operations: ['read'] }).expect(201);
    await eventually(async () => (await kh.http(service).get('/v1/keys/pay-orders')).status === 200, 'a new grant applies');
    await admin.delete(`/api/v1/grants/${grant.body.id}`).expect(204);
    await eventually(async () => (await kh.http(service).get('/v1/keys/pay-orders')).status === 404, 'a deleted grant stops applying');
    const listed = await admin.get('/api/v1/grants').expect(200);
    assert.ok(Array.isArray(listed.body.grants));
    const invalid = await admin.post('/api/v1/grants').send({ identity: 'x', keys: '*', operations: ['fly'] });
    assert.equal(invalid.status, 400);
    const badIdentity = await admin.post('/api/v1/certificates').send({ identity: 'not a uri' });
    assert.equal(badIdentity.status, 400);
  });

  it('issues a certificate for the key of a CSR, whose private key never reaches Keyhold', async () => {
    const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    x509.cryptoProvider.set(webcrypto as never);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=ignored-by-keyhold',
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    });
    const admin = kh.adminHttp(session);
    await admin.post('/api/v1/grants').send({ identity: 'spiffe://prod/ns/csr/*', keys: 'pay-*', operations: ['read'] }).expect(201);
    const issued = await admin.post('/api/v1/certificates').send({ identity: 'spiffe://prod/ns/csr/sa/app', csr: csr.toString('pem') });
    assert.equal(issued.status, 201, issued.text);
    assert.equal(issued.body.privateKeyPem, null);
    const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64');
    const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.match(/.{1,64}/g)?.join('\n')}\n-----END PRIVATE KEY-----\n`;
    const read = await kh.http({ cert: issued.body.certificatePem, key: keyPem }).get('/v1/keys/pay-orders');
    assert.equal(read.status, 200, read.text);
    const described = new X509Certificate(issued.body.certificatePem);
    assert.match(described.subjectAltName ?? '', /URI:spiffe:\/\/prod\/ns\/csr\/sa\/app/);

    const forged = csr.toString('pem').replace(/.{8}(\n-----END)/, 'AAAAAAAA$1');
    const refused = await admin.post('/api/v1/certificates').send({ identity: 'spiffe://prod/ns/csr/sa/app', csr: forged });
    assert.equal(refused.status, 400);
    const junk = await admin.post('/api/v1/certificates').send({ identity: 'spiffe://prod/ns/csr/sa/app', csr: 'x'.repeat(200) });
    assert.equal(junk.status, 400);
    assert.equal(junk.body.error.code, 'VALIDATION_FAILED');
  });
});
