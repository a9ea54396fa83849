import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SealState } from '../../src/seal/seal-state';
import { initShamirMasterKey } from '../../src/seal/shamir-seal';
import { dumpDatabase, encodingsOf } from '../support/database-dump';
import { type TestAdmin, enrolAdmin, inviteAdmin, setupTokenOf } from '../support/test-admins';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

async function eventually(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  for (let attempt = 0; attempt < 250; attempt += 1) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail(`never happened: ${what}`);
}

/** Requests a sensitive operation and approves it with the requester's passkey; returns the operation. */
async function requestAndApprove(kh: TestKeyhold, admin: TestAdmin, path: string) {
  const requested = await kh.adminHttp(admin.session).post(path).send({});
  assert.equal(requested.status, 201, requested.text);
  const response = await admin.authenticator.getAssertion(requested.body.assertionOptions);
  const approved = await kh.adminHttp(admin.session).post(`/api/v1/operations/${requested.body.operation.id}/approvals`).send({ response });
  assert.equal(approved.status, 200, approved.text);
  return approved.body;
}

async function rowsUnder(kh: TestKeyhold, version: number): Promise<{ keyVersions: number; ca: number; auditKeys: number }> {
  const count = async (table: string) =>
    (await kh.dataSource.query(`SELECT count(*)::int AS n FROM ${table} WHERE master_key_version = $1`, [version]))[0].n as number;
  return { keyVersions: await count('keyhold_key_versions'), ca: await count('keyhold_certificate_authority'), auditKeys: await count('keyhold_audit_keys') };
}

describe('master-key rotation: a new version, a background rewrap, retirement; two instances', () => {
  let a: TestKeyhold;
  let b: TestKeyhold;
  let alice: TestAdmin;
  let operator: TestAdmin;
  const ciphertexts: Array<{ key: string; ciphertext: string; plaintext: string }> = [];

  before(async () => {
    // Slow enough (one row per batch, paced) that a retirement can be tried while rows are still under the old version.
    a = await startTestKeyhold({ admin: true, masterKeyRewrap: { batchSize: 1, paceMs: 40, intervalMs: 60_000 } });
    b = await startTestKeyhold({ databaseUrl: a.database.url, masterKey: a.masterKey });
    alice = await enrolAdmin(a, 'alice', setupTokenOf(a));
    operator = await inviteAdmin(a, alice, 'olga', 'operator');
    for (const name of ['payments', 'orders', 'ledger', 'mail', 'archive']) {
      await a.http().post('/v1/keys').send({ name, algorithm: 'aes-256-gcm' }).expect(201);
      await a.http().post(`/v1/keys/${name}/rotate`).expect(200);
      for (const plaintext of ['b25l', 'dHdv']) {
        const encrypted = await a.http().post(`/v1/keys/${name}/encrypt`).send({ plaintext }).expect(200);
        ciphertexts.push({ key: name, ciphertext: encrypted.body.ciphertext, plaintext });
      }
    }
  });
  after(async () => {
    await b.stop();
    await a.stop();
  });

  it('starts at version 1, the root itself; every row is under it', async () => {
    const status = await a.adminHttp(alice.session).get('/api/v1/master-key').expect(200);
    assert.equal(status.body.currentVersion, 1);
    assert.deepEqual(status.body.versions.map((v: { version: number; state: string; servedByRoot: boolean }) => [v.version, v.state, v.servedByRoot]), [[1, 'active', true]]);
    assert.deepEqual(status.body.remaining, { 'key-versions': 0, 'certificate-authority': 0, 'audit-keys': 0 });
    assert.deepEqual(status.body.versions[0].references, { 'key-versions': 10, 'certificate-authority': 1, 'audit-keys': 2 });
  });

  it('only an admin may rotate, and only through an approved operation', async () => {
    const refused = await a.adminHttp(operator.session).post('/api/v1/master-key/rotate').send({});
    assert.equal(refused.status, 403, refused.text);
    const pending = await a.adminHttp(alice.session).post('/api/v1/master-key/rotate').send({}).expect(201);
    assert.equal(pending.body.operation.status, 'pending');
    assert.deepEqual(pending.body.operation.operation, { kind: 'rotate-master-key' });
    assert.equal((await a.adminHttp(alice.session).get('/api/v1/master-key').expect(200)).body.currentVersion, 1, 'a request alone changes nothing');
    await a.adminHttp(alice.session).post(`/api/v1/operations/${pending.body.operation.id}/reject`).expect(200);
  });

  it('rotates while both instances encrypt and decrypt continuously, with no failed request', async () => {
    let stop = false;
    const failures: string[] = [];
    let requests = 0;
    const load = async (kh: TestKeyhold, name: string) => {
      while (!stop) {
        const encrypted = await kh.http().post(`/v1/keys/${name}/encrypt`).send({ plaintext: 'bG9hZA==' });
        requests += 1;
        if (encrypted.status !== 200) {
          failures.push(`encrypt ${encrypted.status} ${encrypted.text}`);
          continue;
        }
        const decrypted = await kh.http().post('/v1/decrypt').send({ ciphertext: encrypted.body.ciphertext });
        requests += 1;
        if (decrypted.status !== 200 || decrypted.body.plaintext !== 'bG9hZA==') failures.push(`decrypt ${decrypted.status} ${decrypted.text}`);
        // Cold caches too: a miss reads rows under either version while the rewrap moves them.
        if (requests % 14 === 0) kh.server.cache.clear();
        // Keys are created and rotated too: new material must be wrapped under whichever version is live.
        if (requests % 20 === 0) {
          const rotated = await kh.http().post(`/v1/keys/${name}/rotate`);
          if (rotated.status !== 200) failures.push(`rotate ${rotated.status} ${rotated.text}`);
        }
      }
    };
    const running = [load(a, 'payments'), load(b, 'orders'), load(a, 'ledger'), load(b, 'mail')];
    await new Promise((resolve) => setTimeout(resolve, 300));

    const rotation = await requestAndApprove(a, alice, '/api/v1/master-key/rotate');
    assert.equal(rotation.status, 'executed', JSON.stringify(rotation.result));
    assert.deepEqual(rotation.result, { version: 2, previousVersion: 1 });
    await eventually(() => b.server.masterKey.ring.version === 2, 'the other instance wraps under version 2');

    // While the rewrap runs, the old version is still referenced: retiring it is refused.
    const rewrapping = a.server.masterKey.rewrap.runOnce();
    const early = await a.adminHttp(alice.session).post('/api/v1/master-key/versions/1/retire').send({});
    assert.equal(early.status, 409, early.text);
    assert.match(early.body.error.message, /still protects \d+ key-versions/);
    const active = await a.adminHttp(alice.session).post('/api/v1/master-key/versions/2/retire').send({});
    assert.equal(active.status, 409, 'the active version is never retired');
    await rewrapping;

    await new Promise((resolve) => setTimeout(resolve, 200));
    stop = true;
    await Promise.all(running);
    assert.deepEqual(failures, []);
    assert.ok(requests > 20, `only ${requests} requests ran`);
    // A row written under version 1 by an instance that had not heard of the rotation yet is picked up by the next pass.
    await a.server.masterKey.rewrap.runOnce();

    assert.deepEqual(await rowsUnder(a, 1), { keyVersions: 0, ca: 0, auditKeys: 0 });
    const status = await a.adminHttp(alice.session).get('/api/v1/master-key').expect(200);
    assert.equal(status.body.currentVersion, 2);
    assert.deepEqual(status.body.remaining, { 'key-versions': 0, 'certificate-authority': 0, 'audit-keys': 0 });
    assert.deepEqual(status.body.versions.map((v: { version: number; state: string }) => [v.version, v.state]), [[1, 'retiring'], [2, 'active']]);
    assert.equal(status.body.rewrap.state, 'idle');
    assert.ok(status.body.rewrap.lastPass.finishedAt);
    const { n } = (await a.dataSource.query(`SELECT count(*)::int AS n FROM keyhold_key_versions WHERE master_key_version = 2`))[0];
    assert.ok(n >= 10);
  });

  it('old ciphertexts still decrypt on both instances, from material unwrapped under the new version', async () => {
    const health = await b.http().get('/v1/health').expect(200);
    assert.deepEqual(health.body.masterKey, { version: 2, rewrap: 'idle' });
    a.server.cache.clear();
    b.server.cache.clear();
    for (const { ciphertext, plaintext } of ciphertexts) {
      assert.equal((await a.http().post('/v1/decrypt').send({ ciphertext }).expect(200)).body.plaintext, plaintext);
      assert.equal((await b.http().post('/v1/decrypt').send({ ciphertext }).expect(200)).body.plaintext, plaintext);
    }
    await b.http().post('/v1/keys').send({ name: 'made-on-b', algorithm: 'aes-256-gcm' }).expect(201);
    const [row] = await a.dataSource.query(
      `SELECT kv.master_key_version FROM keyhold_key_versions kv JOIN keyhold_keys k ON k.id = kv.key_id WHERE k.name = 'made-on-b'`,
    );
    assert.equal(row.master_key_version, 2);
  });

  it('the new version key is nowhere in the database or the logs, only sealed under the root', async () => {
    const opened = (a.server.masterKey.ring as unknown as { opened: { keys: Map<number, unknown> } }).opened;
    const version2 = (opened.keys.get(2) as { keyBytes: Buffer }).keyBytes;
    assert.equal(version2.length, 32);
    const dump = await dumpDatabase(a.dataSource);
    const logs = [...a.logs, ...b.logs].join('\n');
    for (const form of encodingsOf(version2)) {
      assert.ok(!dump.includes(form), 'the version 2 key is in the database');
      assert.ok(!logs.includes(form), 'the version 2 key was logged');
    }
    const root = (a.masterKey as unknown as { keyBytes: Buffer }).keyBytes;
    for (const form of encodingsOf(root)) assert.ok(!dump.includes(form) && !logs.includes(form), 'the root is in the database or the logs');
  });

  it('the CA key, resealed under the new version, still issues certificates', async () => {
    const issued = await a.adminHttp(alice.session).post('/api/v1/certificates').send({ identity: 'spiffe://test/after-rotation' });
    assert.equal(issued.status, 201, issued.text);
    assert.match(issued.body.certificatePem, /BEGIN CERTIFICATE/);
    const client = await b.http({ cert: issued.body.certificatePem, key: issued.body.privateKeyPem }).get('/v1/health');
    assert.equal(client.status, 200, client.text);
  });

  it('retires version 1 once nothing references it; a late write under it is refused by the database', async () => {
    const done = await requestAndApprove(a, alice, '/api/v1/master-key/versions/1/retire');
    assert.equal(done.status, 'executed', JSON.stringify(done.result));
    const [row] = await a.dataSource.query(`SELECT state, sealed_key, retired_at FROM keyhold_master_key_versions WHERE version = 1`);
    assert.equal(row.state, 'retired');
    assert.equal(row.sealed_key, null);
    assert.ok(row.retired_at);
    await assert.rejects(
      a.dataSource.query(`UPDATE keyhold_key_versions SET master_key_version = 1 WHERE version = 1 AND wrapped_material IS NOT NULL`),
      /master key version 1 is not live/,
    );
    await eventually(() => !b.server.masterKey.ring.liveVersions().includes(1), 'the other instance forgets version 1');
    const again = await a.adminHttp(alice.session).post('/api/v1/master-key/versions/1/retire').send({});
    assert.equal(again.status, 409);
  });

  it('rotating again and retiring version 2 deletes its sealed key from the database', async () => {
    const [before2] = await a.dataSource.query(`SELECT sealed_key FROM keyhold_master_key_versions WHERE version = 2`);
    assert.ok(Buffer.isBuffer(before2.sealed_key) && before2.sealed_key.length > 32);
    assert.equal((await requestAndApprove(a, alice, '/api/v1/master-key/rotate')).status, 'executed');
    await a.server.masterKey.rewrap.runOnce();
    assert.deepEqual(await rowsUnder(a, 2), { keyVersions: 0, ca: 0, auditKeys: 0 });
    assert.equal((await requestAndApprove(a, alice, '/api/v1/master-key/versions/2/retire')).status, 'executed');
    const [after2] = await a.dataSource.query(`SELECT sealed_key, state FROM keyhold_master_key_versions WHERE version = 2`);
    assert.deepEqual(after2, { sealed_key: null, state: 'retired' });
    const dump = await dumpDatabase(a.dataSource);
    assert.ok(!dump.includes(before2.sealed_key.toString('hex')), 'the sealed key of version 2 is still somewhere in the database');
    for (const { ciphertext, plaintext } of ciphertexts) {
      assert.equal((await b.http().post('/v1/decrypt').send({ ciphertext }).expect(200)).body.plaintext, plaintext);
    }
    assert.deepEqual(a.server.masterKey.ring.liveVersions(), [3]);
    // The audit keys were rewrapped too: both instances still sign checkpoints, one of them reading its keys afresh.
    b.server.audit.keys.forget();
    for (const kh of [a, b]) {
      await kh.http().post('/v1/keys/payments/encrypt').send({ plaintext: 'YXVkaXQ=' }).expect(200);
      const checkpoint = await kh.server.audit.checkpointer.checkpoint();
      assert.ok(checkpoint, 'no checkpoint was signed');
    }
  });

  it('documents the routes in the OpenAPI document', async () => {
    const docs = await a.adminHttp().get('/docs').expect(200);
    for (const path of ['/api/v1/master-key', '/api/v1/master-key/rotate', '/api/v1/master-key/versions/{version}/retire']) {
      assert.ok(docs.body.paths[path], `${path} is not documented`);
    }
  });
});

describe('master-key rotation with a quorum of two', () => {
  let kh: TestKeyhold;
  let alice: TestAdmin;
  let bob: TestAdmin;
  before(async () => {
    kh = await startTestKeyhold({ admin: true });
    alice = await enrolAdmin(kh, 'alice', setupTokenOf(kh));
    bob = await inviteAdmin(kh, alice, 'bob', 'admin');
    const requested = await kh.adminHttp(alice.session).post('/api/v1/operations').send({ kind: 'set-quorum', approvals: 2 }).expect(201);
    const response = await alice.authenticator.getAssertion(requested.body.assertionOptions);
    await kh.adminHttp(alice.session).post(`/api/v1/operations/${requested.body.operation.id}/approvals`).send({ response }).expect(200);
  });
  after(() => kh.stop());

  it('rotates only once a second admin approved', async () => {
    const first = await requestAndApprove(kh, alice, '/api/v1/master-key/rotate');
    assert.equal(first.status, 'pending');
    assert.equal(first.requiredApprovals, 2);
    assert.equal((await kh.adminHttp(alice.session).get('/api/v1/master-key').expect(200)).body.currentVersion, 1);
    const pending = await kh.adminHttp(bob.session).get(`/api/v1/operations/${first.id}`).expect(200);
    const response = await bob.authenticator.getAssertion(pending.body.assertionOptions);
    const second = await kh.adminHttp(bob.session).post(`/api/v1/operations/${first.id}/approvals`).send({ response }).expect(200);
    assert.equal(second.body.status, 'executed', JSON.stringify(second.body.result));
    assert.equal((await kh.adminHttp(alice.session).get('/api/v1/master-key').expect(200)).body.currentVersion, 2);
  });
});

describe('master-key versions across sealing (Shamir)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-mk-shamir-'));
  let kh: TestKeyhold;
  let shares: string[];
  before(async () => {
    const init = await initShamirMasterKey(join(dir, 'v.json'), 3, 2);
    shares = init.shares;
    kh = await startTestKeyhold({ seal: { state: new SealState('shamir', null), shamir: init.file } });
  });
  after(async () => {
    await kh.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a sealed Keyhold has no keyring; unsealing opens every live version again, sealed under the root', async () => {
    await assert.rejects(kh.server.masterKey.service.rotate(), /sealed/i);
    for (const share of shares.slice(0, 2)) await kh.server.seal.unsealer?.submit(share);
    await kh.http().post('/v1/keys').send({ name: 'across', algorithm: 'aes-256-gcm' }).expect(201);
    const { ciphertext } = (await kh.http().post('/v1/keys/across/encrypt').send({ plaintext: 'c2VhbGVk' }).expect(200)).body;
    await kh.server.masterKey.service.rotate();
    await kh.server.masterKey.rewrap.runOnce();
    await kh.server.masterKey.service.retire(1);

    await kh.server.seal.state.seal();
    assert.equal(kh.server.masterKey.ring.loaded, false);
    assert.equal((await kh.http().post('/v1/decrypt').send({ ciphertext })).status, 503);
    for (const share of shares.slice(1, 3)) await kh.server.seal.unsealer?.submit(share);
    assert.deepEqual(kh.server.masterKey.ring.liveVersions(), [2]);
    assert.equal((await kh.http().post('/v1/decrypt').send({ ciphertext }).expect(200)).body.plaintext, 'c2VhbGVk');
  });
});
