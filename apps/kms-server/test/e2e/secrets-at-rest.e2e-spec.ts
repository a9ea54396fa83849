import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from '@keyhold/crypto-core';
import { AUDIT_KEY_LABELS } from '../../src/audit/audit-keys';
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
    // The audit trail's own secrets: its HMAC key and its checkpoint signing key, opened here to search for them.
    await kh.server.audit.checkpointer.checkpoint();
    const auditKeys: Array<{ purpose: keyof typeof AUDIT_KEY_LABELS; sealed: Buffer; master_key_version: number }> = await kh.dataSource.query(
      'SELECT purpose, sealed, master_key_version FROM keyhold_audit_keys',
    );
    assert.equal(auditKeys.length, 2);
    for (const { purpose, sealed, master_key_version } of auditKeys) secrets.push(kh.masterKey.open(sealed, master_key_version, AUDIT_KEY_LABELS[purpose]));
    await kh.server.usage.flush();
  });

  it('has an audit trail of the whole workload, holding only HMACs of the contexts', async () => {
    const rows: Array<{ operation: string; context_hmac: string | null }> = await kh.dataSource.query('SELECT operation, context_hmac FROM keyhold_audit_records');
    const operations = new Set(rows.map((row) => row.operation));
    for (const operation of ['keys.create', 'keys.rotate', 'encrypt', 'decrypt', 'datakey', 'wrap']) assert.ok(operations.has(operation), operation);
    assert.equal(rows.filter((row) => row.context_hmac !== null).length, 20, 'ten encrypts and ten decrypts with a context');
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
