import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

const b64 = (text: string) => Buffer.from(text).toString('base64');

describe('cryptographic operations', () => {
  let kh: TestKeyhold;
  before(async () => {
    kh = await startTestKeyhold();
    await kh.http().post('/v1/keys').send({ name: 'app', algorithm: 'aes-256-gcm' }).expect(201);
    await kh.http().post('/v1/keys').send({ name: 'other', algorithm: 'aes-256-gcm' }).expect(201);
  });
  after(() => kh.stop());

  it('encrypts and decrypts, by key name and by ciphertext alone', async () => {
    const enc = await kh.http().post('/v1/keys/app/encrypt').send({ plaintext: b64('hello') }).expect(200);
    assert.equal(enc.body.keyName, 'app');
    assert.equal(enc.body.keyVersion, 1);
    assert.match(enc.body.ciphertext, /^kh1:app:1:/);
    assert.ok(!enc.body.ciphertext.includes(b64('hello')));
    const byName = await kh.http().post('/v1/keys/app/decrypt').send({ ciphertext: enc.body.ciphertext }).expect(200);
    assert.deepEqual(byName.body, { plaintext: b64('hello'), keyName: 'app', keyVersion: 1 });
    const byCiphertext = await kh.http().post('/v1/decrypt').send({ ciphertext: enc.body.ciphertext }).expect(200);
    assert.deepEqual(byCiphertext.body, byName.body);
  });

  it('encrypts the empty plaintext and the 32 KiB maximum; refuses one byte more', async () => {
    const empty = await kh.http().post('/v1/keys/app/encrypt').send({ plaintext: '' }).expect(200);
    const back = await kh.http().post('/v1/decrypt').send({ ciphertext: empty.body.ciphertext }).expect(200);
    assert.equal(back.body.plaintext, '');
    const max = Buffer.alloc(32 * 1024, 7).toString('base64');
    const big = await kh.http().post('/v1/keys/app/encrypt').send({ plaintext: max }).expect(200);
    const bigBack = await kh.http().post('/v1/decrypt').send({ ciphertext: big.body.ciphertext }).expect(200);
    assert.equal(bigBack.body.plaintext, max);
    const over = await kh.http().post('/v1/keys/app/encrypt').send({ plaintext: Buffer.alloc(32 * 1024 + 1).toString('base64') });
    assert.equal(over.status, 400);
    assert.equal(over.body.error.code, 'VALIDATION_FAILED');
  });

  it('binds the encryption context: same context decrypts, any other fails with INVALID_CIPHERTEXT', async () => {
    const context = { tenant: 'acme', purpose: 'invoice' };
    const enc = await kh.http().post('/v1/keys/app/encrypt').send({ plaintext: b64('ctx'), context }).expect(200);
    const reordered = await kh
      .http()
      .post('/v1/keys/app/decrypt')
      .send({ ciphertext: enc.body.ciphertext, context: { purpose: 'invoice', tenant: 'acme' } })
      .expect(200);
    assert.equal(reordered.body.plaintext, b64('ctx'));
    for (const wrong of [undefined, {}, { tenant: 'acme' }, { tenant: 'acme', purpose: 'receipt' }, { ...context, extra: 'x' }]) {
      const response = await kh.http().post('/v1/keys/app/decrypt').send({ ciphertext: enc.body.ciphertext, context: wrong });
      assert.equal(response.status, 422, JSON.stringify(wrong));
      assert.equal(response.body.error.code, 'INVALID_CIPHERTEXT');
    }
  });

  it('refuses a ciphertext of another key named in the path with 422 INVALID_CIPHERTEXT', async () => {
    const enc = await kh.http().post('/v1/keys/other/encrypt').send({ plaintext: b64('x') }).expect(200);
    const response = await kh.http().post('/v1/keys/app/decrypt').send({ ciphertext: enc.body.ciphertext });
    assert.equal(response.status, 422);
    assert.equal(response.body.error.code, 'INVALID_CIPHERTEXT');
  });

  it('refuses altered ciphertexts cleanly: every field swapped or byte flipped', async () => {
    const enc = await kh.http().post('/v1/keys/app/encrypt').send({ plaintext: b64('tamper') }).expect(200);
    const [prefix, name, version, body] = enc.body.ciphertext.split(':');
    const bytes = Buffer.from(body, 'base64');
    const flipped = (index: number) => {
      const copy = Buffer.from(bytes);
      copy[index] ^= 0x01;
      return `${prefix}:${name}:${version}:${copy.toString('base64')}`;
    };
    const variants = [
      flipped(0),
      flipped(40),
      flipped(bytes.length - 1),
      `${prefix}:${name}:2:${body}`,
      `${prefix}:other:${version}:${body}`,
      `kh2:${name}:${version}:${body}`,
      `${prefix}:${name}:${version}:${bytes.subarray(0, bytes.length - 1).toString('base64')}`,
      `${prefix}:${name}:${version}:`,
      'not a ciphertext',
      `${enc.body.ciphertext}AAAA`,
    ];
    for (const ciphertext of variants) {
      const response = await kh.http().post('/v1/decrypt').send({ ciphertext });
      assert.ok([404, 422].includes(response.status), `${response.status} for ${ciphertext.slice(0, 30)}`);
      if (response.status === 422) assert.equal(response.body.error.code, 'INVALID_CIPHERTEXT');
      assert.equal(response.body.plaintext, undefined);
    }
  });

  it('re-encrypts an old ciphertext under the primary version', async () => {
    await kh.http().post('/v1/keys').send({ name: 'reenc', algorithm: 'aes-256-gcm' }).expect(201);
    const v1 = await kh.http().post('/v1/keys/reenc/encrypt').send({ plaintext: b64('move me'), context: { a: 'b' } }).expect(200);
    await kh.http().post('/v1/keys/reenc/rotate').expect(200);
    const moved = await kh
      .http()
      .post('/v1/keys/reenc/reencrypt')
      .send({ ciphertext: v1.body.ciphertext, context: { a: 'b' } })
      .expect(200);
    assert.equal(moved.body.keyVersion, 2);
    assert.match(moved.body.ciphertext, /^kh1:reenc:2:/);
    const back = await kh.http().post('/v1/decrypt').send({ ciphertext: moved.body.ciphertext, context: { a: 'b' } }).expect(200);
    assert.equal(back.body.plaintext, b64('move me'));
  });

  it('generates data keys of 16, 24 and 32 bytes, with and without the plaintext', async () => {
    for (const bytes of [16, 24, 32]) {
      const dk = await kh.http().post('/v1/keys/app/datakey').send({ bytes }).expect(200);
      assert.equal(Buffer.from(dk.body.plaintext, 'base64').length, bytes);
      const back = await kh.http().post('/v1/decrypt').send({ ciphertext: dk.body.ciphertext }).expect(200);
      assert.equal(back.body.plaintext, dk.body.plaintext);
    }
    const defaulted = await kh.http().post('/v1/keys/app/datakey').expect(200);
    assert.equal(Buffer.from(defaulted.body.plaintext, 'base64').length, 32);
    const sealedOnly = await kh.http().post('/v1/keys/app/datakey').send({ withPlaintext: false }).expect(200);
    assert.equal(sealedOnly.body.plaintext, undefined);
    assert.ok(sealedOnly.body.ciphertext);
    const bad = await kh.http().post('/v1/keys/app/datakey').send({ bytes: 20 });
    assert.equal(bad.status, 400);
  });

  it('wraps and unwraps keys', async () => {
    const key = Buffer.alloc(32, 9).toString('base64');
    const wrapped = await kh.http().post('/v1/keys/app/wrap').send({ key, context: { k: 'v' } }).expect(200);
    assert.equal(wrapped.body.keyName, 'app');
    const unwrapped = await kh.http().post('/v1/keys/app/unwrap').send({ ciphertext: wrapped.body.ciphertext, context: { k: 'v' } }).expect(200);
    assert.equal(unwrapped.body.key, key);
    const emptyKey = await kh.http().post('/v1/keys/app/wrap').send({ key: '' });
    assert.equal(emptyKey.status, 400);
  });

  it('returns random bytes of the asked length, 1..1024', async () => {
    const one = await kh.http().post('/v1/random').send({ bytes: 1 }).expect(200);
    assert.equal(Buffer.from(one.body.random, 'base64').length, 1);
    const max = await kh.http().post('/v1/random').send({ bytes: 1024 }).expect(200);
    assert.equal(Buffer.from(max.body.random, 'base64').length, 1024);
    for (const bytes of [0, 1025, '8', 1.5]) {
      const response = await kh.http().post('/v1/random').send({ bytes });
      assert.equal(response.status, 400);
    }
  });

  it('answers batches item by item, in order, with per-item errors', async () => {
    const enc = await kh
      .http()
      .post('/v1/keys/app/encrypt/batch')
      .send({ items: [{ plaintext: b64('one') }, { plaintext: b64('two'), context: { n: '2' } }] })
      .expect(200);
    assert.equal(enc.body.results.length, 2);
    const dec = await kh
      .http()
      .post('/v1/keys/app/decrypt/batch')
      .send({
        items: [
          { ciphertext: enc.body.results[0].ciphertext },
          { ciphertext: enc.body.results[1].ciphertext },
          { ciphertext: enc.body.results[1].ciphertext, context: { n: '2' } },
          { ciphertext: 'garbage' },
        ],
      })
      .expect(200);
    assert.equal(dec.body.results[0].plaintext, b64('one'));
    assert.equal(dec.body.results[1].error.code, 'INVALID_CIPHERTEXT');
    assert.equal(dec.body.results[2].plaintext, b64('two'));
    assert.equal(dec.body.results[3].error.code, 'INVALID_CIPHERTEXT');
    await kh.http().post('/v1/keys/app/rotate').expect(200);
    const re = await kh
      .http()
      .post('/v1/keys/app/reencrypt/batch')
      .send({ items: [{ ciphertext: enc.body.results[0].ciphertext }, { ciphertext: 'kh1:app:1:AAAA' }] })
      .expect(200);
    assert.equal(re.body.results[0].keyVersion, 2);
    assert.equal(re.body.results[1].error.code, 'INVALID_CIPHERTEXT');
    const tooMany = await kh
      .http()
      .post('/v1/keys/app/encrypt/batch')
      .send({ items: Array.from({ length: 1001 }, () => ({ plaintext: '' })) });
    assert.equal(tooMany.status, 400);
    const none = await kh.http().post('/v1/keys/app/encrypt/batch').send({ items: [] });
    assert.equal(none.status, 400);
  });

  it('counts encryptions per version without a write per request, and shows them in the metadata', async () => {
    await kh.http().post('/v1/keys').send({ name: 'counted', algorithm: 'aes-256-gcm' }).expect(201);
    for (let i = 0; i < 5; i += 1) await kh.http().post('/v1/keys/counted/encrypt').send({ plaintext: '' }).expect(200);
    await kh.http().post('/v1/keys/counted/datakey').expect(200);
    const live = await kh.client().getKey('counted');
    assert.equal(live.versions[0].encryptions, 6);
    assert.equal(live.encryptions, 6);
    assert.ok(live.versions[0].lastUsedAt);
    const [stored] = await kh.dataSource.query(
      `SELECT v.encryptions FROM keyhold_key_versions v JOIN keyhold_keys k ON k.id = v.key_id WHERE k.name = 'counted'`,
    );
    assert.equal(Number(stored.encryptions), 0, 'not yet flushed: no UPDATE per request');
    await kh.server.usage.flush();
    const [flushed] = await kh.dataSource.query(
      `SELECT v.encryptions FROM keyhold_key_versions v JOIN keyhold_keys k ON k.id = v.key_id WHERE k.name = 'counted'`,
    );
    assert.equal(Number(flushed.encryptions), 6);
    assert.equal((await kh.client().getKey('counted')).versions[0].encryptions, 6);
  });
});
