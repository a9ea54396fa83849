import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from '@keyhold/crypto-core';
import { dumpDatabase, encodingsOf } from '../support/database-dump';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

describe('secrets at rest: the database and the logs', () => {
  let kh: TestKeyhold;
  const secrets: Buffer[] = [];
  let firstCiphertext = '';
  before(async () => {
    kh = await startTestKeyhold();
    const client = kh.client();
    for (const name of ['vault-a', 'vault-b']) {
      await client.createKey({ name, algorithm: 'aes-256-gcm' });
      if (name === 'vault-a') firstCiphertext = (await client.encrypt(name, Buffer.from('under v1'))).ciphertext;
      await client.rotateKey(name);
    }
    for (let i = 0; i < 10; i += 1) {
      const plaintext = Buffer.from(`top-secret-plaintext-${i}-${randomBytes(8).toString('hex')}`);
      const contextValue = `context-secret-${randomBytes(6).toString('hex')}`;
      secrets.push(plaintext, Buffer.from(contextValue));
      const encrypted = await client.encrypt('vault-a', plaintext, { tenant: contextValue });
      await client.decrypt('vault-a', encrypted.ciphertext, { tenant: contextValue });
      const dataKey = await client.generateDataKey('vault-b', { withPlaintext: true });
      secrets.push(dataKey.plaintext as Buffer);
      const wrappedKey = randomBytes(32);
      secrets.push(wrappedKey);
      await client.wrapKey('vault-b', wrappedKey);
    }
    // Errors on the way must not leak either: a bad request carrying a secret.
    await kh.http().post('/v1/keys/vault-a/encrypt').send({ plaintext: secrets[0].toString('base64'), unknown: 1 });
    for (const name of ['vault-a', 'vault-b']) {
      const loaded = await kh.server.cache.get(name);
      assert.ok(loaded);
      secrets.push(...[...loaded.versionKeys.values()].map((versionKey) => versionKey.export()));
    }
    await kh.server.usage.flush();
  });
  after(() => kh.stop());

  it('holds no key material, plaintext, data key or context in any table', async () => {
    const dump = await dumpDatabase(kh.dataSource);
    assert.ok(dump.includes('vault-a'), 'the dump really holds the keys');
    assert.ok(secrets.length > 40);
    for (const secret of secrets) {
      for (const form of encodingsOf(secret)) {
        assert.ok(!dump.includes(form), `a secret appears in the database (${form.slice(0, 6)}…)`);
      }
    }
  });

  it('writes none of them to the log, and redacts secret fields handed to the logger', async () => {
    const all = kh.logs.join('\n');
    for (const secret of secrets) {
      for (const form of encodingsOf(secret)) {
        assert.ok(!all.includes(form), `a secret appears in the log (${form.slice(0, 6)}…)`);
      }
    }
  });

  it('refuses material copied onto another row: both rows fail to unwrap, cleanly', async () => {
    await kh.dataSource.query(`
      WITH a AS (SELECT v.wrapped_material m FROM keyhold_key_versions v JOIN keyhold_keys k ON k.id = v.key_id WHERE k.name = 'vault-a' AND v.version = 2),
           b AS (SELECT v.wrapped_material m FROM keyhold_key_versions v JOIN keyhold_keys k ON k.id = v.key_id WHERE k.name = 'vault-b' AND v.version = 2)
      UPDATE keyhold_key_versions v SET wrapped_material = CASE k.name WHEN 'vault-a' THEN (SELECT m FROM b) ELSE (SELECT m FROM a) END
        FROM keyhold_keys k WHERE k.id = v.key_id AND v.version = 2 AND k.name IN ('vault-a', 'vault-b')`);
    kh.server.cache.clear();
    for (const name of ['vault-a', 'vault-b']) {
      const response = await kh.http().post(`/v1/keys/${name}/encrypt`).send({ plaintext: 'eA==' });
      assert.equal(response.status, 500);
      assert.equal(response.body.error.code, 'INTERNAL');
      assert.match(response.body.error.message, /integrity/);
      assert.ok(!JSON.stringify(response.body).includes(' at '), 'no stack trace');
    }
    // Only the damaged version is unusable: a ciphertext under version 1 still decrypts.
    const v1 = await kh.http().post('/v1/keys/vault-a/decrypt').send({ ciphertext: firstCiphertext });
    assert.equal(v1.status, 200);
    assert.ok(kh.logs.some((line) => line.includes('failed its integrity check') && line.includes('vault-a')));
  });
});
