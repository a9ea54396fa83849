import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

describe('key lifecycle over the service plane', () => {
  let kh: TestKeyhold;
  before(async () => {
    kh = await startTestKeyhold();
  });
  after(() => kh.stop());

  it('creates a key with version 1 as primary and reads it back', async () => {
    const created = await kh.http().post('/v1/keys').send({
      name: 'payments',
      algorithm: 'aes-256-gcm',
      description: 'card data',
      rotationPeriodDays: 90,
      labels: { team: 'billing' },
    });
    assert.equal(created.status, 201);
    assert.equal(created.body.name, 'payments');
    assert.equal(created.body.state, 'enabled');
    assert.equal(created.body.primaryVersion, 1);
    assert.equal(created.body.minDecryptionVersion, 1);
    assert.equal(created.body.rotationPeriodDays, 90);
    assert.equal(created.body.nextRotationAt, '2026-04-01T00:00:00.000Z');
    assert.deepEqual(created.body.labels, { team: 'billing' });
    assert.deepEqual(
      created.body.versions.map((v: { version: number; state: string }) => [v.version, v.state]),
      [[1, 'enabled']],
    );
    const read = await kh.http().get('/v1/keys/payments');
    assert.equal(read.status, 200);
    assert.deepEqual(read.body, created.body);
  });

  it('refuses a second key with the same name with 409 KEY_EXISTS', async () => {
    await kh.http().post('/v1/keys').send({ name: 'dup', algorithm: 'aes-256-gcm' }).expect(201);
    const again = await kh.http().post('/v1/keys').send({ name: 'dup', algorithm: 'aes-256-gcm' });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'KEY_EXISTS');
  });

  it('answers 404 KEY_NOT_FOUND for a key that does not exist', async () => {
    const response = await kh.http().get('/v1/keys/nope');
    assert.equal(response.status, 404);
    assert.equal(response.body.error.code, 'KEY_NOT_FOUND');
    assert.ok(response.body.error.requestId);
  });

  it('lists keys in name order with cursor pagination', async () => {
    for (const name of ['list-a', 'list-b', 'list-c', 'list-d', 'list-e']) {
      await kh.http().post('/v1/keys').send({ name, algorithm: 'aes-256-gcm' }).expect(201);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor ? `?limit=2&cursor=${encodeURIComponent(cursor)}` : '?limit=2';
      const page = await kh.http().get(`/v1/keys${query}`).expect(200);
      assert.ok(page.body.keys.length <= 2);
      seen.push(...page.body.keys.map((key: { name: string }) => key.name));
      cursor = page.body.nextCursor;
      pages += 1;
    } while (cursor && pages < 20);
    const listed = seen.filter((name) => name.startsWith('list-'));
    assert.deepEqual(listed, ['list-a', 'list-b', 'list-c', 'list-d', 'list-e']);
    assert.deepEqual([...seen].sort(), seen, 'pages come in name order');
    const bad = await kh.http().get('/v1/keys?cursor=!!notacursor');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'VALIDATION_FAILED');
  });

  it('rotates: a new primary version; old ciphertexts still decrypt; new ones use the new version', async () => {
    await kh.http().post('/v1/keys').send({ name: 'rot', algorithm: 'aes-256-gcm' }).expect(201);
    const before = await kh.http().post('/v1/keys/rot/encrypt').send({ plaintext: 'b2xk' }).expect(200);
    assert.equal(before.body.keyVersion, 1);
    const rotated = await kh.http().post('/v1/keys/rot/rotate').expect(200);
    assert.equal(rotated.body.primaryVersion, 2);
    assert.equal(rotated.body.versions.length, 2);
    const after = await kh.http().post('/v1/keys/rot/encrypt').send({ plaintext: 'bmV3' }).expect(200);
    assert.equal(after.body.keyVersion, 2);
    const old = await kh.http().post('/v1/keys/rot/decrypt').send({ ciphertext: before.body.ciphertext }).expect(200);
    assert.equal(old.body.plaintext, 'b2xk');
    assert.equal(old.body.keyVersion, 1);
  });

  it('gives 20 concurrent rotations of one key 20 consecutive versions', async () => {
    await kh.http().post('/v1/keys').send({ name: 'race', algorithm: 'aes-256-gcm' }).expect(201);
    const results = await Promise.all(
      Array.from({ length: 20 }, () => kh.client().rotateKey('race')),
    );
    const primaries = results.map((key) => key.primaryVersion).sort((a, b) => a - b);
    assert.deepEqual(primaries, Array.from({ length: 20 }, (_, i) => i + 2));
    const final = await kh.client().getKey('race');
    assert.deepEqual(
      final.versions.map((v) => v.version),
      Array.from({ length: 21 }, (_, i) => i + 1),
    );
    assert.equal(final.primaryVersion, 21);
  });

  it('enforces minDecryptionVersion and refuses one above the primary version', async () => {
    await kh.http().post('/v1/keys').send({ name: 'mindec', algorithm: 'aes-256-gcm' }).expect(201);
    const v1 = await kh.http().post('/v1/keys/mindec/encrypt').send({ plaintext: 'eA==' }).expect(200);
    await kh.http().post('/v1/keys/mindec/rotate').expect(200);
    const tooHigh = await kh.http().patch('/v1/keys/mindec').send({ minDecryptionVersion: 3 });
    assert.equal(tooHigh.status, 400);
    assert.equal(tooHigh.body.error.code, 'VALIDATION_FAILED');
    const updated = await kh.http().patch('/v1/keys/mindec').send({ minDecryptionVersion: 2 }).expect(200);
    assert.equal(updated.body.minDecryptionVersion, 2);
    const refused = await kh.http().post('/v1/keys/mindec/decrypt').send({ ciphertext: v1.body.ciphertext });
    assert.equal(refused.status, 422);
    assert.equal(refused.body.error.code, 'KEY_VERSION_DISABLED');
    await kh.http().patch('/v1/keys/mindec').send({ minDecryptionVersion: 1 }).expect(200);
    await kh.http().post('/v1/keys/mindec/decrypt').send({ ciphertext: v1.body.ciphertext }).expect(200);
  });

  it('updates description, labels and rotation period', async () => {
    await kh.http().post('/v1/keys').send({ name: 'upd', algorithm: 'aes-256-gcm' }).expect(201);
    const updated = await kh
      .http()
      .patch('/v1/keys/upd')
      .send({ description: 'new', labels: { env: 'prod' }, rotationPeriodDays: 30 })
      .expect(200);
    assert.equal(updated.body.description, 'new');
    assert.deepEqual(updated.body.labels, { env: 'prod' });
    assert.equal(updated.body.rotationPeriodDays, 30);
    assert.equal(updated.body.nextRotationAt, '2026-01-31T00:00:00.000Z');
    const cleared = await kh.http().patch('/v1/keys/upd').send({ rotationPeriodDays: null }).expect(200);
    assert.equal(cleared.body.nextRotationAt, null);
  });

  it('disables and enables a key; a disabled key refuses encrypt and decrypt with 409 INVALID_STATE', async () => {
    await kh.http().post('/v1/keys').send({ name: 'toggle', algorithm: 'aes-256-gcm' }).expect(201);
    const ct = await kh.http().post('/v1/keys/toggle/encrypt').send({ plaintext: 'eA==' }).expect(200);
    const disabled = await kh.http().post('/v1/keys/toggle/disable').expect(200);
    assert.equal(disabled.body.state, 'disabled');
    const enc = await kh.http().post('/v1/keys/toggle/encrypt').send({ plaintext: 'eA==' });
    assert.equal(enc.status, 409);
    assert.equal(enc.body.error.code, 'INVALID_STATE');
    const dec = await kh.http().post('/v1/keys/toggle/decrypt').send({ ciphertext: ct.body.ciphertext });
    assert.equal(dec.status, 409);
    assert.equal(dec.body.error.code, 'INVALID_STATE');
    const rot = await kh.http().post('/v1/keys/toggle/rotate');
    assert.equal(rot.status, 409);
    const enabled = await kh.http().post('/v1/keys/toggle/enable').expect(200);
    assert.equal(enabled.body.state, 'enabled');
    await kh.http().post('/v1/keys/toggle/decrypt').send({ ciphertext: ct.body.ciphertext }).expect(200);
  });

  it('disables and enables a single version, never the primary one', async () => {
    await kh.http().post('/v1/keys').send({ name: 'vtoggle', algorithm: 'aes-256-gcm' }).expect(201);
    const v1 = await kh.http().post('/v1/keys/vtoggle/encrypt').send({ plaintext: 'eA==' }).expect(200);
    const primary = await kh.http().post('/v1/keys/vtoggle/versions/1/disable');
    assert.equal(primary.status, 409);
    await kh.http().post('/v1/keys/vtoggle/rotate').expect(200);
    const off = await kh.http().post('/v1/keys/vtoggle/versions/1/disable').expect(200);
    assert.equal(off.body.versions[0].state, 'disabled');
    const refused = await kh.http().post('/v1/keys/vtoggle/decrypt').send({ ciphertext: v1.body.ciphertext });
    assert.equal(refused.body.error.code, 'KEY_VERSION_DISABLED');
    await kh.http().post('/v1/keys/vtoggle/versions/1/enable').expect(200);
    await kh.http().post('/v1/keys/vtoggle/decrypt').send({ ciphertext: v1.body.ciphertext }).expect(200);
    const missing = await kh.http().post('/v1/keys/vtoggle/versions/9/disable');
    assert.equal(missing.status, 400);
    const badVersion = await kh.http().post('/v1/keys/vtoggle/versions/abc/disable');
    assert.equal(badVersion.status, 400);
    assert.equal(badVersion.body.error.code, 'VALIDATION_FAILED');
  });
});
