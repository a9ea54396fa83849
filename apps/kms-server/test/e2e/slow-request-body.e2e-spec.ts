import 'reflect-metadata';
import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import type { Server } from 'node:http';
import { REQUEST_TIMEOUT_MS } from '../../src/keyhold-server';
import { enrolAdmin, setupTokenOf } from '../support/test-admins';
import { type Credentials, type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

interface Answer {
  status: number;
  body: { error?: { code: string }; ciphertext?: string };
}

/**
 * A request whose headers and first half of the body are sent now, and the rest when the test says: the server
 * has checked the caller by then and waits for the body.
 */
async function halfSentRequest(kh: TestKeyhold, credentials: Credentials, path: string, json: unknown): Promise<{ finish(): Promise<Answer> }> {
  const { hostname, port } = new URL(kh.url);
  const socket = connect({ host: hostname, port: Number(port), ca: kh.ca, cert: credentials.cert, key: credentials.key, servername: 'localhost' });
  await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  const body = Buffer.from(JSON.stringify(json));
  const received: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  const ended = new Promise<void>((resolve) => socket.once('end', resolve).once('close', resolve));
  socket.write(
    `POST ${path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`,
  );
  socket.write(body.subarray(0, body.length >> 1));
  // The server reads the headers and runs its checks now; then it waits for the rest of the body.
  await new Promise((resolve) => setTimeout(resolve, 200));
  return {
    async finish() {
      // Written, not ended: a client that half-closes is closed by the server before any answer.
      socket.write(body.subarray(body.length >> 1));
      await ended;
      const text = Buffer.concat(received).toString('utf8');
      const [head, payload] = [text.slice(0, text.indexOf('\r\n\r\n')), text.slice(text.indexOf('\r\n\r\n') + 4)];
      return { status: Number(head.split(' ')[1]), body: JSON.parse(payload) };
    },
  };
}

/**
 * The body of a request comes when its client sends it. A certificate revoked or a grant removed while a request
 * waits for its body applies to that request too: the checks run again once the body is in.
 */
describe('a request whose body arrives after a revocation or a grant removal', () => {
  let kh: TestKeyhold;
  let session: { cookie: string; csrfToken: string };
  const plaintext = { plaintext: 'cGF5' };

  async function grantedService(name: string): Promise<{ grantId: string; serialNumber: string; service: Credentials }> {
    const admin = kh.adminHttp(session);
    const grant = await admin.post('/api/v1/grants').send({ identity: `spiffe://prod/ns/${name}/*`, keys: 'pay-*', operations: ['encrypt'] }).expect(201);
    const issued = await admin.post('/api/v1/certificates').send({ identity: `spiffe://prod/ns/${name}/sa/app` }).expect(201);
    const service = { cert: issued.body.certificatePem as string, key: issued.body.privateKeyPem as string };
    await kh.http(service).post('/v1/keys/pay-orders/encrypt').send(plaintext).expect(200);
    return { grantId: grant.body.id as string, serialNumber: issued.body.certificate.serialNumber as string, service };
  }

  before(async () => {
    kh = await startTestKeyhold({ admin: true });
    session = (await enrolAdmin(kh, 'root', setupTokenOf(kh))).session;
    await kh.http().post('/v1/keys').send({ name: 'pay-orders', algorithm: 'aes-256-gcm' }).expect(201);
  });
  after(() => kh.stop());

  it('with nothing changed meanwhile, the slow request succeeds', async () => {
    const { service } = await grantedService('patient');
    const pending = await halfSentRequest(kh, service, '/v1/keys/pay-orders/encrypt', plaintext);
    const answer = await pending.finish();
    assert.equal(answer.status, 200);
    assert.match(answer.body.ciphertext ?? '', /^kh1:pay-orders:/);
  });

  it('a grant removed while the body is on its way: refused, nothing encrypted', async () => {
    const { grantId, service } = await grantedService('ungranted');
    const pending = await halfSentRequest(kh, service, '/v1/keys/pay-orders/encrypt', plaintext);
    await kh.adminHttp(session).delete(`/api/v1/grants/${grantId}`).expect(204);
    const answer = await pending.finish();
    assert.ok(answer.status === 403 || answer.status === 404, `status ${answer.status}`);
    assert.equal(answer.body.ciphertext, undefined);
  });

  it('a certificate revoked while the body is on its way: refused with 401, nothing encrypted', async () => {
    const { serialNumber, service } = await grantedService('revoked');
    const pending = await halfSentRequest(kh, service, '/v1/keys/pay-orders/encrypt', plaintext);
    await kh.adminHttp(session).post(`/api/v1/certificates/${serialNumber}/revoke`).send({ reason: 'key compromise' }).expect(200);
    // Applied on this instance (its notification, or at once): a new request with the certificate is refused.
    for (let attempt = 0; (await kh.http(service).post('/v1/keys/pay-orders/encrypt').send(plaintext)).status !== 401; attempt += 1) {
      assert.ok(attempt < 100, 'the revocation reaches the instance');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const answer = await pending.finish();
    assert.equal(answer.status, 401);
    assert.equal(answer.body.error?.code, 'UNAUTHENTICATED');
    assert.equal(answer.body.ciphertext, undefined);
  });
  it('neither listener waits for a request longer than 30 s (Node: 5 minutes; Fastify: forever)', () => {
    const service = kh.server.app.getHttpServer() as Server;
    const admin = kh.server.admin?.app.getHttpServer() as Server;
    assert.equal(REQUEST_TIMEOUT_MS, 30_000);
    assert.equal(service.requestTimeout, REQUEST_TIMEOUT_MS);
    assert.equal(admin.requestTimeout, REQUEST_TIMEOUT_MS);
  });
});
