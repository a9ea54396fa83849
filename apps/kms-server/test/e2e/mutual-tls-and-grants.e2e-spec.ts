import assert from 'node:assert/strict';
import { request as httpsRequest } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { createCertificateAuthority, issueCertificate } from '@keyhold/crypto-core';
import { type Credentials, OPERATOR, type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

/** A raw HTTPS call, so that the TLS refusal itself is what the test sees. */
function rawRequest(kh: TestKeyhold, credentials: Credentials | null): Promise<{ status: number } | { error: string }> {
  return new Promise((resolve) => {
    const request = httpsRequest(
      `${kh.url}/v1/health`,
      { ca: kh.ca, cert: credentials?.cert, key: credentials?.key, agent: false },
      (response) => {
        response.resume();
        resolve({ status: response.statusCode ?? 0 });
      },
    );
    request.on('error', (error: NodeJS.ErrnoException) => resolve({ error: `${error.code ?? ''} ${error.message}` }));
    request.end();
  });
}

describe('mutual TLS and grants on the service listener', () => {
  let kh: TestKeyhold;
  let reader: Credentials;
  let encryptOnly: Credentials;
  let byDns: Credentials;
  let byCommonName: Credentials;
  before(async () => {
    kh = await startTestKeyhold({
      grants: [
        { identity: OPERATOR, keys: '*', operations: ['*'] },
        { identity: 'spiffe://test.keyhold/ns/*/reader', keys: 'team-a-*', operations: ['read'] },
        { identity: 'spiffe://test.keyhold/encryptor', keys: 'team-a-*', operations: ['encrypt', 'read'] },
        { identity: 'worker.internal', keys: 'team-a-*', operations: ['encrypt'] },
        { identity: 'legacy-service', keys: 'team-a-*', operations: ['random'] },
        { identity: 'spiffe://test.keyhold/expired-grant', keys: '*', operations: ['*'], expiresAt: '2020-01-01T00:00:00Z' },
      ],
    });
    reader = await kh.issueClient({ uri: 'spiffe://test.keyhold/ns/payments/reader' });
    encryptOnly = await kh.issueClient({ uri: 'spiffe://test.keyhold/encryptor' });
    byDns = await kh.issueClient({ dns: 'worker.internal', commonName: 'ignored-cn' });
    byCommonName = await kh.issueClient({ commonName: 'legacy-service' });
    await kh.http().post('/v1/keys').send({ name: 'team-a-orders', algorithm: 'aes-256-gcm' }).expect(201);
    await kh.http().post('/v1/keys').send({ name: 'team-b-secrets', algorithm: 'aes-256-gcm' }).expect(201);
  });
  after(() => kh.stop());

  it('refuses a connection without a client certificate during the TLS handshake', async () => {
    const result = await rawRequest(kh, null);
    assert.ok('error' in result, 'no HTTP answer without a certificate');
    assert.match(result.error, /certificate required|ECONNRESET|socket hang up/i);
  });

  it('refuses a certificate from another CA', async () => {
    const otherCa = await createCertificateAuthority({ commonName: 'Not Keyhold' });
    const foreign = await issueCertificate({ issuer: otherCa, commonName: 'intruder', uris: [OPERATOR], usage: 'client' });
    const result = await rawRequest(kh, { cert: foreign.certificatePem, key: foreign.privateKeyPem });
    assert.ok('error' in result);
    assert.match(result.error, /unknown ca|ECONNRESET|socket hang up/i);
  });

  it('refuses an expired certificate', async () => {
    const expired = await kh.issueClient({
      uri: OPERATOR,
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    const result = await rawRequest(kh, expired);
    assert.ok('error' in result);
    assert.match(result.error, /expired|ECONNRESET|socket hang up/i);
  });

  it('accepts the operator certificate', async () => {
    const result = await rawRequest(kh, kh.operator);
    assert.deepEqual(result, { status: 200 });
  });

  it('answers 404 KEY_NOT_FOUND to an identity with no grant on the key, 403 FORBIDDEN to one that may only read', async () => {
    const hidden = await kh.http(reader).get('/v1/keys/team-b-secrets');
    assert.equal(hidden.status, 404);
    assert.equal(hidden.body.error.code, 'KEY_NOT_FOUND');
    const visible = await kh.http(reader).get('/v1/keys/team-a-orders');
    assert.equal(visible.status, 200);
    const forbidden = await kh.http(reader).post('/v1/keys/team-a-orders/encrypt').send({ plaintext: '' });
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.body.error.code, 'FORBIDDEN');
    const rotate = await kh.http(reader).post('/v1/keys/team-a-orders/rotate');
    assert.equal(rotate.status, 403);
    const create = await kh.http(reader).post('/v1/keys').send({ name: 'team-a-new', algorithm: 'aes-256-gcm' });
    assert.equal(create.status, 403);
    assert.equal(create.body.error.code, 'FORBIDDEN');
  });

  it('checks /v1/decrypt against the key named inside the ciphertext', async () => {
    const ct = await kh.http().post('/v1/keys/team-a-orders/encrypt').send({ plaintext: 'eA==' }).expect(200);
    const response = await kh.http(encryptOnly).post('/v1/decrypt').send({ ciphertext: ct.body.ciphertext });
    assert.equal(response.status, 403);
    assert.equal(response.body.error.code, 'FORBIDDEN');
    const allowed = await kh.http(encryptOnly).post('/v1/keys/team-a-orders/encrypt').send({ plaintext: 'eA==' });
    assert.equal(allowed.status, 200);
  });

  it('lists only keys the caller may read', async () => {
    const listed = await kh.http(reader).get('/v1/keys').expect(200);
    assert.deepEqual(
      listed.body.keys.map((key: { name: string }) => key.name),
      ['team-a-orders'],
    );
  });

  it('takes the identity from the DNS SAN when there is no URI SAN, else from the CN', async () => {
    const dns = await kh.http(byDns).post('/v1/keys/team-a-orders/encrypt').send({ plaintext: '' });
    assert.equal(dns.status, 200);
    const cn = await kh.http(byCommonName).post('/v1/random').send({ bytes: 4 });
    assert.equal(cn.status, 200);
    const cnNoEncrypt = await kh.http(byCommonName).post('/v1/keys/team-a-orders/encrypt').send({ plaintext: '' });
    assert.equal(cnNoEncrypt.status, 403);
  });

  it('ignores expired grants and denies by default', async () => {
    const expiredGrant = await kh.issueClient({ uri: 'spiffe://test.keyhold/expired-grant' });
    const response = await kh.http(expiredGrant).get('/v1/keys/team-a-orders');
    assert.equal(response.status, 404);
    const stranger = await kh.issueClient({ uri: 'spiffe://test.keyhold/stranger' });
    const random = await kh.http(stranger).post('/v1/random').send({ bytes: 4 });
    assert.equal(random.status, 403);
    const health = await kh.http(stranger).get('/v1/health');
    assert.equal(health.status, 200, 'health needs a valid certificate but no grant');
  });
});
