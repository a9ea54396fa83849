import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Credentials, OPERATOR, type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

const b64 = (bytes: Buffer) => bytes.toString('base64');
const KEY = b64(Buffer.alloc(32, 0x5a));
const DATA = b64(Buffer.from('card 4111 1111 1111 1111'));

/**
 * `wrap` makes khw1 ciphertexts and `encrypt`/`datakey` make kh1 ones; each kind opens only through its own
 * operation, so a grant of `unwrap` never reads data and a grant of `decrypt` never opens a wrapped key.
 */
describe('wrapped keys and data are kept apart', () => {
  let kh: TestKeyhold;
  let keyCustodian: Credentials;
  let dataReader: Credentials;
  before(async () => {
    kh = await startTestKeyhold({
      grants: [
        { identity: OPERATOR, keys: '*', operations: ['*'] },
        { identity: 'spiffe://test.keyhold/key-custodian', keys: 'app', operations: ['wrap', 'unwrap'] },
        { identity: 'spiffe://test.keyhold/data-reader', keys: 'app', operations: ['encrypt', 'decrypt'] },
      ],
    });
    await kh.http().post('/v1/keys').send({ name: 'app', algorithm: 'aes-256-gcm' }).expect(201);
    keyCustodian = await kh.issueClient({ uri: 'spiffe://test.keyhold/key-custodian' });
    dataReader = await kh.issueClient({ uri: 'spiffe://test.keyhold/data-reader' });
  });
  after(() => kh.stop());

  const refusal = (response: { status: number; body: { error?: { code: string; message: string } } }, opensWith: RegExp) => {
    assert.equal(response.status, 422);
    assert.equal(response.body.error?.code, 'INVALID_CIPHERTEXT');
    assert.match(response.body.error?.message ?? '', opensWith);
    assert.equal(JSON.stringify(response.body).includes(KEY), false);
    assert.equal(JSON.stringify(response.body).includes(DATA), false);
  };

  it('wrap answers a khw1 ciphertext that unwrap opens and decrypt refuses, on both decrypt routes', async () => {
    const wrapped = await kh.http(keyCustodian).post('/v1/keys/app/wrap').send({ key: KEY, context: { tenant: 'acme' } }).expect(200);
    assert.match(wrapped.body.ciphertext, /^khw1:app:1:/);
    const unwrapped = await kh.http(keyCustodian).post('/v1/keys/app/unwrap').send({ ciphertext: wrapped.body.ciphertext, context: { tenant: 'acme' } });
    assert.equal(unwrapped.status, 200);
    assert.deepEqual(unwrapped.body, { key: KEY, keyName: 'app', keyVersion: 1 });
    // Even a caller allowed everything cannot read a wrapped key as data.
    const asData = { ciphertext: wrapped.body.ciphertext, context: { tenant: 'acme' } };
    refusal(await kh.http().post('/v1/keys/app/decrypt').send(asData), /wrapped key.*unwrap/);
    refusal(await kh.http().post('/v1/decrypt').send(asData), /wrapped key.*unwrap/);
    const batch = await kh.http().post('/v1/keys/app/decrypt/batch').send({ items: [asData] }).expect(200);
    assert.equal(batch.body.results[0].error.code, 'INVALID_CIPHERTEXT');
  });

  it('encrypt and datakey answer kh1 ciphertexts that decrypt opens and unwrap refuses', async () => {
    const encrypted = await kh.http().post('/v1/keys/app/encrypt').send({ plaintext: DATA }).expect(200);
    const dataKey = await kh.http().post('/v1/keys/app/datakey').send({ bytes: 32 }).expect(200);
    for (const ciphertext of [encrypted.body.ciphertext, dataKey.body.ciphertext]) {
      assert.match(ciphertext, /^kh1:app:1:/);
      await kh.http().post('/v1/decrypt').send({ ciphertext }).expect(200);
      refusal(await kh.http().post('/v1/keys/app/unwrap').send({ ciphertext }), /holds data.*decrypt/);
    }
  });

  it('a grant of wrap and unwrap never reads data, and one of encrypt and decrypt never opens a wrapped key', async () => {
    const secret = await kh.http(dataReader).post('/v1/keys/app/encrypt').send({ plaintext: DATA }).expect(200);
    refusal(await kh.http(keyCustodian).post('/v1/keys/app/unwrap').send({ ciphertext: secret.body.ciphertext }), /decrypt/);
    const wrapped = await kh.http(keyCustodian).post('/v1/keys/app/wrap').send({ key: KEY }).expect(200);
    refusal(await kh.http(dataReader).post('/v1/keys/app/decrypt').send({ ciphertext: wrapped.body.ciphertext }), /unwrap/);
    refusal(await kh.http(dataReader).post('/v1/decrypt').send({ ciphertext: wrapped.body.ciphertext }), /unwrap/);
    // What each may do still works.
    const back = await kh.http(dataReader).post('/v1/keys/app/decrypt').send({ ciphertext: secret.body.ciphertext }).expect(200);
    assert.equal(back.body.plaintext, DATA);
  });

  it('a ciphertext relabelled as the other kind opens under neither', async () => {
    const wrapped = await kh.http().post('/v1/keys/app/wrap').send({ key: KEY }).expect(200);
    const encrypted = await kh.http().post('/v1/keys/app/encrypt').send({ plaintext: DATA }).expect(200);
    const wrappedAsData = wrapped.body.ciphertext.replace(/^khw1:/, 'kh1:');
    const dataAsWrapped = encrypted.body.ciphertext.replace(/^kh1:/, 'khw1:');
    for (const response of [
      await kh.http().post('/v1/keys/app/decrypt').send({ ciphertext: wrappedAsData }),
      await kh.http().post('/v1/keys/app/unwrap').send({ ciphertext: dataAsWrapped }),
    ]) {
      assert.equal(response.status, 422);
      assert.equal(response.body.error.code, 'INVALID_CIPHERTEXT');
      assert.equal(response.body.plaintext, undefined);
      assert.equal(response.body.key, undefined);
    }
  });

  it('reencrypt moves each kind to the primary version and keeps it the same kind', async () => {
    const wrapped = await kh.http().post('/v1/keys/app/wrap').send({ key: KEY, context: { k: 'v' } }).expect(200);
    const encrypted = await kh.http().post('/v1/keys/app/encrypt').send({ plaintext: DATA, context: { k: 'v' } }).expect(200);
    const rotated = await kh.http().post('/v1/keys/app/rotate').send({}).expect(200);
    const primary = rotated.body.primaryVersion as number;
    assert.ok(primary >= 2);
    const rewrapped = await kh.http().post('/v1/keys/app/reencrypt').send({ ciphertext: wrapped.body.ciphertext, context: { k: 'v' } }).expect(200);
    assert.match(rewrapped.body.ciphertext, new RegExp(`^khw1:app:${primary}:`));
    const unwrapped = await kh.http().post('/v1/keys/app/unwrap').send({ ciphertext: rewrapped.body.ciphertext, context: { k: 'v' } }).expect(200);
    assert.equal(unwrapped.body.key, KEY);
    const reencrypted = await kh.http().post('/v1/keys/app/reencrypt').send({ ciphertext: encrypted.body.ciphertext, context: { k: 'v' } }).expect(200);
    assert.match(reencrypted.body.ciphertext, new RegExp(`^kh1:app:${primary}:`));
    const decrypted = await kh.http().post('/v1/decrypt').send({ ciphertext: reencrypted.body.ciphertext, context: { k: 'v' } }).expect(200);
    assert.equal(decrypted.body.plaintext, DATA);
  });
});
