import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { ERROR_CODES } from '@keyhold/contracts';
import { KEY_CRYPTO_ROUTES } from '../../src/crypto-ops/crypto-routes';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

const POST_ENDPOINTS = [
  '/v1/keys',
  '/v1/keys/fuzz/encrypt',
  '/v1/keys/fuzz/decrypt',
  '/v1/decrypt',
  '/v1/keys/fuzz/reencrypt',
  '/v1/keys/fuzz/datakey',
  '/v1/keys/fuzz/wrap',
  '/v1/keys/fuzz/unwrap',
  '/v1/random',
  '/v1/keys/fuzz/encrypt/batch',
  '/v1/keys/fuzz/decrypt/batch',
  '/v1/keys/fuzz/reencrypt/batch',
  '/v1/keys/fuzz/schedule-destruction',
  '/v1/keys/fuzz/versions/1/schedule-destruction',
];

function assertCleanError(response: { status: number; body: unknown; text: string }, expected?: number): void {
  if (expected !== undefined) assert.equal(response.status, expected, response.text);
  assert.ok(response.status >= 400 && response.status < 500, `status ${response.status}: ${response.text.slice(0, 200)}`);
  const body = response.body as { error?: { code?: string; message?: string; requestId?: string } };
  assert.ok(body.error, response.text.slice(0, 200));
  assert.ok(ERROR_CODES.includes(body.error.code as never), `unknown code ${body.error.code}`);
  assert.ok(body.error.message && body.error.message.length > 0);
  assert.ok(body.error.requestId);
  assert.ok(!/\n\s+at /.test(response.text), 'no stack trace');
}

describe('bad input gets a clear 4xx, never a 500', () => {
  let kh: TestKeyhold;
  before(async () => {
    kh = await startTestKeyhold();
    await kh.http().post('/v1/keys').send({ name: 'app', algorithm: 'aes-256-gcm' }).expect(201);
    await kh.http().post('/v1/keys').send({ name: 'fuzz', algorithm: 'aes-256-gcm' }).expect(201);
  });
  after(() => kh.stop());

  it('refuses unknown fields, naming them', async () => {
    const response = await kh.http().post('/v1/keys/fuzz/encrypt').send({ plaintext: '', colour: 'blue' });
    assertCleanError(response, 400);
    assert.equal(response.body.error.code, 'VALIDATION_FAILED');
    assert.match(response.body.error.message, /colour/);
  });

  it('refuses wrong types and bad base64', async () => {
    for (const body of [{ plaintext: 5 }, { plaintext: 'not base64!' }, { plaintext: 'YQ' }, { plaintext: ['YQ=='] }, { plaintext: '', context: { a: 1 } }, { plaintext: '', context: 'x' }]) {
      const response = await kh.http().post('/v1/keys/fuzz/encrypt').send(body);
      assertCleanError(response, 400);
      assert.equal(response.body.error.code, 'VALIDATION_FAILED');
    }
  });

  it('refuses invalid key names and algorithms on create', async () => {
    for (const body of [
      { name: 'Upper', algorithm: 'aes-256-gcm' },
      { name: '-dash', algorithm: 'aes-256-gcm' },
      { name: 'ключ', algorithm: 'aes-256-gcm' },
      { name: 'a'.repeat(65), algorithm: 'aes-256-gcm' },
      { name: '', algorithm: 'aes-256-gcm' },
      { name: 'ok', algorithm: 'des' },
      { name: 'ok' },
      { name: 'ok', algorithm: 'aes-256-gcm', rotationPeriodDays: 0 },
      { name: 'ok', algorithm: 'aes-256-gcm', labels: { 'Bad Key': 'x' } },
    ]) {
      const response = await kh.http().post('/v1/keys').send(body);
      assertCleanError(response, 400);
    }
  });

  it('answers unicode, huge and odd key names in paths with 404, not 500', async () => {
    for (const name of [encodeURIComponent('ключ'), 'a'.repeat(64), '%00', encodeURIComponent('../etc'), 'UPPER']) {
      const response = await kh.http().post(`/v1/keys/${name}/encrypt`).send({ plaintext: '' });
      assertCleanError(response);
      assert.ok([400, 404].includes(response.status));
    }
  });

  it('answers names no key can have on every crypto route with 404 before the grant check, which keeps no memo of them', async () => {
    const long = 'k'.repeat(10_000);
    const names = [long, 'a'.repeat(65), encodeURIComponent('Bad Name'), 'UPPER', encodeURIComponent('ключ'), '-dash', '%zz', encodeURIComponent('a/b')];
    const withoutGrants = await kh.issueClient({ uri: 'spiffe://test.keyhold/no-grants' });
    // The grant check on a valid name is memoised (one entry per identity and key)...
    await kh.http().post('/v1/keys/fuzz/encrypt').send({ plaintext: '' }).expect(200);
    const policy = kh.server.identities.grantPolicy.current();
    const memoised = policy.memoisedDecisions;
    assert.ok(memoised > 0);
    // ...but a name no key could have never reaches it: the operator (granted everything) and a caller
    // without any grant get the same 404, which does not repeat the name, and the memo does not grow.
    const started = Date.now();
    for (const action of KEY_CRYPTO_ROUTES.keys()) {
      for (const name of names) {
        for (const caller of [kh.operator, withoutGrants]) {
          const response = await kh.http(caller).post(`/v1/keys/${name}/${action}`).send({ plaintext: '' });
          assertCleanError(response, 404);
          assert.equal(response.body.error.code, 'KEY_NOT_FOUND');
          assert.ok(!response.text.includes('kkkkkkkkkk'), 'the answer does not repeat the name');
          assert.ok(response.text.length < 500, `a short answer, not ${response.text.length} characters`);
        }
      }
    }
    assert.equal(kh.server.identities.grantPolicy.current(), policy, 'the policy was not reloaded meanwhile');
    assert.equal(policy.memoisedDecisions, memoised, 'no decision about an invalid name was memoised');
    assert.ok(Date.now() - started < 60_000, `${Date.now() - started} ms for ${KEY_CRYPTO_ROUTES.size * names.length * 2} requests`);
  });

  it('refuses bodies that are not JSON, not objects, empty, or of another type', async () => {
    const notJson = await kh.http().post('/v1/keys/fuzz/encrypt').set('content-type', 'application/json').send('{"plaintext":');
    assertCleanError(notJson, 400);
    const array = await kh.http().post('/v1/keys/fuzz/encrypt').send([1, 2]);
    assertCleanError(array, 400);
    const empty = await kh.http().post('/v1/keys/fuzz/encrypt').set('content-type', 'application/json').send('');
    assertCleanError(empty, 400);
    const text = await kh.http().post('/v1/keys/fuzz/encrypt').set('content-type', 'text/plain').send('hello');
    assertCleanError(text, 415);
    const proto = await kh.http().post('/v1/keys/fuzz/encrypt').set('content-type', 'application/json').send('{"plaintext":"","__proto__":{"x":1}}');
    assertCleanError(proto, 400);
  });

  it('refuses bodies over 64 KiB with 413 PAYLOAD_TOO_LARGE', async () => {
    const response = await kh.http().post('/v1/keys/fuzz/encrypt').send({ plaintext: 'A'.repeat(70 * 1024) });
    assertCleanError(response, 413);
    assert.equal(response.body.error.code, 'PAYLOAD_TOO_LARGE');
  });

  it('answers unknown endpoints and methods with the error shape', async () => {
    assertCleanError(await kh.http().get('/v1/nothing-here'), 404);
    assertCleanError(await kh.http().delete('/v1/keys/app'), 404);
  });

  it('survives generated garbage on every endpoint (property-based)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...POST_ENDPOINTS), fc.jsonValue({ maxDepth: 3 }), async (path, body) => {
        const response = await kh.http().post(path).set('content-type', 'application/json').send(JSON.stringify(body));
        if (response.status < 400) return;
        assertCleanError(response);
      }),
      { numRuns: 300 },
    );
  });

  it('survives generated ciphertext strings (property-based)', async () => {
    const valid = await kh.http().post('/v1/keys/app/encrypt').send({ plaintext: 'aGVsbG8=' }).expect(200);
    const ciphertext: string = valid.body.ciphertext;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.tuple(fc.nat(ciphertext.length - 1), fc.string({ minLength: 1, maxLength: 1 })).map(([i, c]) => ciphertext.slice(0, i) + c + ciphertext.slice(i + 1)),
          fc.nat(ciphertext.length - 1).map((n) => ciphertext.slice(0, n)),
        ),
        async (candidate) => {
          if (candidate === ciphertext) return;
          const response = await kh.http().post('/v1/decrypt').send({ ciphertext: candidate });
          if (response.status === 200) {
            // Base64 has slack in its last character's low bits; anything that decrypts must be the original.
            assert.equal(response.body.plaintext, 'aGVsbG8=');
            return;
          }
          assertCleanError(response);
        },
      ),
      { numRuns: 300 },
    );
  });
});
