import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { auditRecordFromRow, auditRecordPagesInRange } from '@keyhold/contracts';
import { type AuditCheckpoint, type AuditEntry, chainRecords, publicKeyFingerprint, verifyCheckpointSignature } from '@keyhold/crypto-core';
import { appendLocked } from '../../src/audit/chain-appender';
import { chainVerifiesInDatabase, verifyStoredChain } from '../../src/audit/stored-chain';
import { type AuditReader, createAuditReader } from '../support/audit-reader';
import { holdAnExport } from '../support/held-export';
import { kmsctl } from '../support/kmsctl';
import { type TestAdmin, enrolAdmin, inviteAdmin, setupTokenOf } from '../support/test-admins';
import { OPERATOR, type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

const HEADER = 'keyhold-audit-sequence';
type Row = Record<string, unknown>;

describe('audit trail: records, group commit, fail closed, checkpoints, kmsctl', () => {
  let kh: TestKeyhold;
  let admin: TestAdmin;
  let auditor: TestAdmin;
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-audit-'));
  let reader: AuditReader;
  let readerUrl = '';
  let publicKeyFile = '';

  const record = async (sequence: number): Promise<Row> => {
    const rows: Row[] = await kh.dataSource.query('SELECT * FROM keyhold_audit_records WHERE sequence = $1', [sequence]);
    assert.ok(rows[0], `record #${sequence} exists`);
    return rows[0];
  };
  const insertRows = async (rows: Row[]) => {
    for (const row of rows) {
      const columns = Object.keys(row);
      await kh.dataSource.query(
        `INSERT INTO keyhold_audit_records (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`,
        columns.map((column) => row[column]),
      );
    }
  };
  const sequenceOf = (response: { headers: Record<string, unknown> }) => {
    const value = String(response.headers[HEADER]);
    assert.match(value, /^\d+$/, `a single sequence in ${HEADER}`);
    return Number(value);
  };
  const verifyDatabase = () => kmsctl(['audit', 'verify', '--public-key', publicKeyFile], { KEYHOLD_AUDIT_DATABASE_URL: readerUrl });

  before(async () => {
    kh = await startTestKeyhold({ admin: true });
    admin = await enrolAdmin(kh, 'alice', setupTokenOf(kh));
    auditor = await inviteAdmin(kh, admin, 'audrey', 'auditor');
    // kmsctl reads with a role that can only SELECT the audit tables (and only the public column of the keys).
    reader = await createAuditReader(kh, auditor.session, dir);
    readerUrl = reader.url;
    publicKeyFile = reader.publicKeyFile;
  });
  after(async () => {
    await kh.stop();
    await reader?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('records service-plane successes with actor, key, version, request id, source and an HMAC of the context', async () => {
    const created = await kh.http().post('/v1/keys').send({ name: 'audited', algorithm: 'aes-256-gcm' }).expect(201);
    const createRecord = await record(sequenceOf(created));
    assert.deepEqual(
      [createRecord.plane, createRecord.actor, createRecord.operation, createRecord.key_name, createRecord.key_version, createRecord.outcome],
      ['service', OPERATOR, 'keys.create', 'audited', 1, 'success'],
    );
    const encrypted = await kh.http().post('/v1/keys/audited/encrypt').send({ plaintext: 'aGVsbG8=', context: { tenant: 'acme' } }).expect(200);
    const row = await record(sequenceOf(encrypted));
    assert.equal(row.operation, 'encrypt');
    assert.equal(row.key_version, 1);
    assert.equal(row.request_id, encrypted.headers['x-request-id']);
    assert.match(String(row.source_address), /127\.0\.0\.1/);
    assert.match(String(row.context_hmac), /^[0-9a-f]{64}$/);
    assert.equal(row.error_code, null);
    // Same context, same HMAC (auditors can match); another context, another one; no context, null.
    const again = await kh.http().post('/v1/keys/audited/encrypt').send({ plaintext: 'aGk=', context: { tenant: 'acme' } }).expect(200);
    assert.equal((await record(sequenceOf(again))).context_hmac, row.context_hmac);
    const other = await kh.http().post('/v1/keys/audited/encrypt').send({ plaintext: 'aGk=', context: { tenant: 'globex' } }).expect(200);
    assert.notEqual((await record(sequenceOf(other))).context_hmac, row.context_hmac);
    const decrypted = await kh.http().post('/v1/decrypt').send({ ciphertext: encrypted.body.ciphertext, context: { tenant: 'acme' } }).expect(200);
    const decryptRecord = await record(sequenceOf(decrypted));
    assert.deepEqual([decryptRecord.operation, decryptRecord.key_name, decryptRecord.key_version], ['decrypt', 'audited', 1]);
    const random = await kh.http().post('/v1/random').send({ bytes: 16 }).expect(200);
    assert.equal((await record(sequenceOf(random))).operation, 'random');
  });

  it('records refusals (400, 403, 404, 422) with their error codes, and still answers with the header', async () => {
    const invalid = await kh.http().post('/v1/keys/audited/encrypt').send({ plaintext: 'aGk=', unknown: 1 }).expect(400);
    const invalidRow = await record(sequenceOf(invalid));
    assert.deepEqual([invalidRow.outcome, invalidRow.error_code, invalidRow.actor], ['refused', 'VALIDATION_FAILED', OPERATOR]);
    const missing = await kh.http().post('/v1/keys/no-such-key/encrypt').send({ plaintext: 'aGk=' }).expect(404);
    assert.equal((await record(sequenceOf(missing))).error_code, 'KEY_NOT_FOUND');
    // A grant to decrypt only: encrypting is a grant denial (a key it cannot see at all would be a 404).
    const granted = await kh.adminHttp(admin.session).post('/api/v1/grants').send({ identity: 'spiffe://test.keyhold/stranger', keys: 'audited', operations: ['decrypt'] }).expect(201);
    const grantRow = await record(sequenceOf(granted));
    assert.deepEqual([grantRow.plane, grantRow.actor, grantRow.operation], ['admin', `admin:${admin.id}`, 'grants.create']);
    const stranger = await kh.issueClient({ uri: 'spiffe://test.keyhold/stranger' });
    const denied = await kh.http(stranger).post('/v1/keys/audited/encrypt').send({ plaintext: 'aGk=' }).expect(403);
    const deniedRow = await record(sequenceOf(denied));
    assert.deepEqual([deniedRow.actor, deniedRow.operation, deniedRow.key_name, deniedRow.error_code], ['spiffe://test.keyhold/stranger', 'encrypt', 'audited', 'FORBIDDEN']);
    const garbage = await kh.http().post('/v1/keys/audited/decrypt').send({ ciphertext: 'kh1:nonsense' }).expect(422);
    assert.equal((await record(sequenceOf(garbage))).error_code, 'INVALID_CIPHERTEXT');
  });

  it('records a refused /v1/decrypt with the key its ciphertext names (403 and 404 alike), and no key for a header that names none', async () => {
    await kh.http().post('/v1/keys').send({ name: 'audited-hidden', algorithm: 'aes-256-gcm' }).expect(201);
    await kh.http().post('/v1/keys').send({ name: 'audited-unseen', algorithm: 'aes-256-gcm' }).expect(201);
    const hidden = await kh.http().post('/v1/keys/audited-hidden/encrypt').send({ plaintext: 'aGk=' }).expect(200);
    const unseen = await kh.http().post('/v1/keys/audited-unseen/encrypt').send({ plaintext: 'aGk=' }).expect(200);
    // The caller may decrypt somewhere (so the request gets as far as its body) and read the hidden key, but not decrypt it.
    await kh.adminHttp(admin.session).post('/api/v1/grants').send({ identity: 'spiffe://test.keyhold/peeker', keys: 'audited-hidden', operations: ['read'] }).expect(201);
    await kh.adminHttp(admin.session).post('/api/v1/grants').send({ identity: 'spiffe://test.keyhold/peeker', keys: 'audited', operations: ['decrypt'] }).expect(201);
    const peeker = await kh.issueClient({ uri: 'spiffe://test.keyhold/peeker' });
    const forbidden = await kh.http(peeker).post('/v1/decrypt').send({ ciphertext: hidden.body.ciphertext }).expect(403);
    const forbiddenRow = await record(sequenceOf(forbidden));
    assert.deepEqual(
      [forbiddenRow.actor, forbiddenRow.operation, forbiddenRow.key_name, forbiddenRow.outcome, forbiddenRow.error_code],
      ['spiffe://test.keyhold/peeker', 'decrypt', 'audited-hidden', 'refused', 'FORBIDDEN'],
    );
    // A caller with no decrypt grant anywhere is refused before its body is used, and the record still names the key.
    const stranger = await kh.issueClient({ uri: 'spiffe://test.keyhold/no-decrypt-anywhere' });
    const noGrant = await kh.http(stranger).post('/v1/decrypt').send({ ciphertext: hidden.body.ciphertext }).expect(403);
    const noGrantRow = await record(sequenceOf(noGrant));
    assert.deepEqual([noGrantRow.actor, noGrantRow.key_name, noGrantRow.error_code], ['spiffe://test.keyhold/no-decrypt-anywhere', 'audited-hidden', 'FORBIDDEN']);
    const noGrantGarbage = await kh.http(stranger).post('/v1/decrypt').send('{"ciphertext": ').set('content-type', 'application/json').expect(403);
    assert.equal((await record(sequenceOf(noGrantGarbage))).key_name, null);
    const notVisible = await kh.http(peeker).post('/v1/decrypt').send({ ciphertext: unseen.body.ciphertext }).expect(404);
    const notVisibleRow = await record(sequenceOf(notVisible));
    assert.deepEqual([notVisibleRow.key_name, notVisibleRow.error_code], ['audited-unseen', 'KEY_NOT_FOUND']);
    // A tampered body still names its key; a refused request body (unknown field) too; a header naming no valid key, none.
    const tampered = await kh.http().post('/v1/decrypt').send({ ciphertext: `kh1:audited-hidden:1:${'A'.repeat(108)}` }).expect(422);
    assert.deepEqual([(await record(sequenceOf(tampered))).key_name, (await record(sequenceOf(tampered))).error_code], ['audited-hidden', 'INVALID_CIPHERTEXT']);
    const unknownField = await kh.http().post('/v1/decrypt').send({ ciphertext: hidden.body.ciphertext, colour: 'blue' }).expect(400);
    assert.equal((await record(sequenceOf(unknownField))).key_name, 'audited-hidden');
    for (const ciphertext of ['kh1:Not-A-Key:1:AAAA', `kh1:${'a'.repeat(65)}:1:AAAA`, 'kh1:nonsense', 'garbage', 42]) {
      const refused = await kh.http().post('/v1/decrypt').send({ ciphertext });
      assert.ok(refused.status === 400 || refused.status === 422, refused.text);
      assert.equal((await record(sequenceOf(refused))).key_name, null, String(ciphertext));
    }
    // And a success still names it.
    const decrypted = await kh.http().post('/v1/decrypt').send({ ciphertext: hidden.body.ciphertext }).expect(200);
    assert.equal((await record(sequenceOf(decrypted))).key_name, 'audited-hidden');
  });

  it('records every item of a batch, and answers with the range of their sequences', async () => {
    const batch = await kh
      .http()
      .post('/v1/keys/audited/encrypt/batch')
      .send({ items: [{ plaintext: 'YQ==' }, { plaintext: 'Yg==', context: { a: 'b' } }, { plaintext: 'Yw==' }] })
      .expect(200);
    const [first, last] = String(batch.headers[HEADER]).split('-').map(Number);
    assert.equal(last - first, 2);
    const rows: Row[] = await kh.dataSource.query('SELECT * FROM keyhold_audit_records WHERE sequence BETWEEN $1 AND $2 ORDER BY sequence', [first, last]);
    assert.deepEqual(rows.map((r) => [r.operation, r.key_version, r.context_hmac === null]), [['encrypt', 1, true], ['encrypt', 1, false], ['encrypt', 1, true]]);
  });

  it('records admin-plane changes in their transaction, sign-in failures, and serves the log to auditors only', async () => {
    const rotated = await kh.adminHttp(admin.session).post('/api/v1/keys/audited/rotate').expect(200);
    const rotateRow = await record(sequenceOf(rotated));
    assert.deepEqual([rotateRow.plane, rotateRow.actor, rotateRow.operation, rotateRow.key_version], ['admin', `admin:${admin.id}`, 'keys.rotate', 2]);
    const refused = await kh.adminHttp().post('/api/v1/session').send({ response: { id: 'bogus', rawId: 'bogus', type: 'public-key', response: {} } });
    assert.equal(refused.status, 401);
    const signInRow = await record(sequenceOf(refused));
    assert.deepEqual([signInRow.operation, signInRow.outcome, signInRow.error_code, signInRow.actor], ['admin.sign-in', 'refused', 'UNAUTHENTICATED', null]);
    const enrolRows: Row[] = await kh.dataSource.query(`SELECT * FROM keyhold_audit_records WHERE operation = 'admin.enrol' AND outcome = 'success' ORDER BY sequence`);
    assert.deepEqual(enrolRows.map((r) => r.actor), [`admin:${admin.id}`, `admin:${auditor.id}`], 'by the administrator the enrolment creates');
    const invitations: Row[] = await kh.dataSource.query(`SELECT actor FROM keyhold_audit_records WHERE operation = 'admins.invite'`);
    assert.deepEqual(invitations.map((r) => r.actor), [`admin:${admin.id}`]);

    const page1 = await kh.adminHttp(auditor.session).get('/api/v1/audit/records?key=audited&operation=encrypt&outcome=success&limit=2').expect(200);
    assert.equal(page1.body.records.length, 2);
    assert.ok(page1.body.nextCursor);
    const page2 = await kh.adminHttp(auditor.session).get(`/api/v1/audit/records?key=audited&operation=encrypt&outcome=success&limit=100&cursor=${page1.body.nextCursor}`).expect(200);
    assert.equal(page2.body.records.length, 4, 'three single encrypts and three batch items, less the first page');
    assert.ok(page2.body.records.every((r: Row) => r.operation === 'encrypt' && r.keyName === 'audited' && Number(r.sequence) > Number(page1.body.nextCursor)));
    const byActor = await kh.adminHttp(auditor.session).get(`/api/v1/audit/records?actor=${encodeURIComponent('spiffe://test.keyhold/stranger')}`).expect(200);
    assert.deepEqual(byActor.body.records.map((r: Row) => r.errorCode), ['FORBIDDEN']);
    await kh.adminHttp(auditor.session).get('/api/v1/audit/records?outcome=maybe').expect(400);
    await kh.adminHttp().get('/api/v1/audit/records').expect(401);
    const operator = await inviteAdmin(kh, admin, 'oscar', 'operator');
    await kh.adminHttp(operator.session).get('/api/v1/audit/records').expect(403);
    const docs = await kh.adminHttp().get('/docs').expect(200);
    const query = docs.body.paths['/api/v1/audit/records'].get.parameters.map((p: Row) => p.name);
    for (const name of ['from', 'to', 'actor', 'key', 'operation', 'outcome', 'limit', 'cursor']) assert.ok(query.includes(name), name);
    assert.ok(docs.body.paths['/api/v1/audit/export'] && docs.body.paths['/api/v1/audit/public-key']);
    const reads: Row[] = await kh.dataSource.query(`SELECT actor, outcome FROM keyhold_audit_records WHERE operation = 'audit.query' ORDER BY sequence`);
    assert.ok(reads.some((r) => r.actor === `admin:${auditor.id}` && r.outcome === 'success'), 'reading the log is itself recorded');
    assert.ok(reads.some((r) => r.actor === `admin:${operator.id}` && r.outcome === 'refused'));
  });

  it('group-commits concurrent encrypts: fewer INSERTs than records, each answer has its own committed sequence', async () => {
    const before = kh.server.audit.trail.batchesWritten;
    const answers = await Promise.all(
      Array.from({ length: 60 }, () => kh.http().post('/v1/keys/audited/encrypt').send({ plaintext: 'Z3JvdXA=' })),
    );
    assert.ok(answers.every((answer) => answer.status === 200));
    const sequences = answers.map(sequenceOf);
    assert.equal(new Set(sequences).size, sequences.length, 'distinct');
    const batches = kh.server.audit.trail.batchesWritten - before;
    assert.ok(batches < sequences.length, `${batches} batches for ${sequences.length} records`);
    const rows: Row[] = await kh.dataSource.query('SELECT sequence::int AS sequence, request_id FROM keyhold_audit_records WHERE sequence = ANY($1::bigint[])', [sequences]);
    const requestIdOf = new Map(rows.map((r) => [Number(r.sequence), r.request_id]));
    answers.forEach((answer, index) => assert.equal(requestIdOf.get(sequences[index]), answer.headers['x-request-id']));
  });

  it('fails closed: when a record cannot be written the request fails with 503 and changes nothing', async () => {
    await kh.dataSource.query(`CREATE FUNCTION keyhold_test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit refused by the test'; END $$`);
    await kh.dataSource.query(`CREATE TRIGGER keyhold_test_refuse_audit BEFORE INSERT ON keyhold_audit_records FOR EACH ROW EXECUTE FUNCTION keyhold_test_refuse_audit()`);
    try {
      const encrypt = await kh.http().post('/v1/keys/audited/encrypt').send({ plaintext: 'c2VjcmV0' });
      assert.equal(encrypt.status, 503);
      assert.equal(encrypt.body.error.code, 'UNAVAILABLE');
      assert.equal(encrypt.body.ciphertext, undefined, 'no result without its record');
      assert.equal(encrypt.headers[HEADER], undefined);
      const rotate = await kh.http().post('/v1/keys/audited/rotate');
      assert.equal(rotate.status, 503);
      const [key] = await kh.dataSource.query(`SELECT primary_version FROM keyhold_keys WHERE name = 'audited'`);
      assert.equal(key.primary_version, 2, 'the rotation rolled back with its record');
      const create = await kh.adminHttp(admin.session).post('/api/v1/keys').send({ name: 'never-made', algorithm: 'aes-256-gcm' });
      assert.equal(create.status, 503);
      assert.deepEqual(await kh.dataSource.query(`SELECT 1 FROM keyhold_keys WHERE name = 'never-made'`), []);
      const grant = await kh.adminHttp(admin.session).post('/api/v1/grants').send({ identity: 'spiffe://test.keyhold/never', keys: '*', operations: ['encrypt'] });
      assert.equal(grant.status, 503);
      assert.deepEqual(await kh.dataSource.query(`SELECT 1 FROM keyhold_grants WHERE identity_pattern = 'spiffe://test.keyhold/never'`), []);
    } finally {
      await kh.dataSource.query('DROP TRIGGER keyhold_test_refuse_audit ON keyhold_audit_records');
      await kh.dataSource.query('DROP FUNCTION keyhold_test_refuse_audit()');
    }
    await kh.http().post('/v1/keys/audited/encrypt').send({ plaintext: 'c2VjcmV0' }).expect(200);
  });

  it('keeps one chain with two instances appending at once', async () => {
    const second = await startTestKeyhold({ databaseUrl: kh.database.url, masterKey: kh.masterKey });
    try {
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, i) => (i % 2 ? kh : second).http().post('/v1/keys/audited/encrypt').send({ plaintext: 'dHdv' })),
      );
      assert.ok(answers.every((answer) => answer.status === 200));
      assert.equal(new Set(answers.map(sequenceOf)).size, 40);
    } finally {
      await second.stop();
    }
    const verified = await verifyDatabase();
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, /^OK: \d+ record\(s\) #1\.\./);
  });

  it('signs checkpoints that verify under the published public key; kmsctl prints the same key', async () => {
    const signed = await kh.adminHttp(auditor.session).post('/api/v1/audit/checkpoints').set('x-csrf-token', auditor.session.csrfToken).expect(200);
    const checkpoint = signed.body.checkpoint as AuditCheckpoint;
    const publicKeyPem = readFileSync(publicKeyFile, 'utf8');
    assert.equal(verifyCheckpointSignature(publicKeyPem, checkpoint), true);
    assert.equal(checkpoint.keyFingerprint, publicKeyFingerprint(publicKeyPem));
    const [head] = await kh.dataSource.query('SELECT sequence::int AS sequence, hash FROM keyhold_audit_chain_head');
    assert.ok(checkpoint.sequence <= head.sequence);
    assert.equal((await record(checkpoint.sequence)).hash, checkpoint.headHash);
    const printed = await kmsctl(['audit', 'public-key'], { KEYHOLD_AUDIT_DATABASE_URL: readerUrl });
    assert.equal(printed.code, 0, printed.stderr);
    assert.equal(printed.stdout.trim(), publicKeyPem.trim());
    const verified = await verifyDatabase();
    assert.match(verified.stdout, new RegExp(`latest signed checkpoint #${checkpoint.sequence}`));
  });

  it('exports JSON Lines (admin API and kmsctl) that verify offline; filtered exports are for reading', async () => {
    const exported = await kh.adminHttp(auditor.session).get('/api/v1/audit/export').expect(200);
    assert.match(String(exported.headers['content-type']), /application\/x-ndjson/);
    const file = join(dir, 'export.jsonl');
    writeFileSync(file, exported.text);
    const lines = exported.text.trim().split('\n').map((line) => JSON.parse(line));
    assert.equal(lines[0].type, 'header');
    assert.ok(lines.some((line) => line.type === 'checkpoint'));
    const verified = await kmsctl(['audit', 'verify', '--file', file, '--public-key', publicKeyFile]);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);

    const cliFile = join(dir, 'cli-export.jsonl');
    const cliExport = await kmsctl(['audit', 'export', '--out', cliFile], { KEYHOLD_AUDIT_DATABASE_URL: readerUrl });
    assert.equal(cliExport.code, 0, cliExport.stderr);
    assert.equal((await kmsctl(['audit', 'verify', '--file', cliFile, '--public-key', publicKeyFile])).code, 0);
    const byKey = await kmsctl(['audit', 'export', '--key', 'audited', '--operation', 'keys.rotate'], { KEYHOLD_AUDIT_DATABASE_URL: readerUrl });
    const records = byKey.stdout.trim().split('\n').map((line) => JSON.parse(line)).filter((line) => line.type === 'record');
    assert.deepEqual(records.map((r) => [r.operation, r.keyName, r.plane]), [['keys.rotate', 'audited', 'admin']]);
    writeFileSync(join(dir, 'filtered.jsonl'), byKey.stdout);
    const refused = await kmsctl(['audit', 'verify', '--file', join(dir, 'filtered.jsonl'), '--public-key', publicKeyFile]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /filtered by key, operation/);

    // An export file altered or reordered by hand.
    const altered = exported.text.replace('"operation":"keys.rotate"', '"operation":"keys.enable"');
    writeFileSync(join(dir, 'altered.jsonl'), altered);
    const caught = await kmsctl(['audit', 'verify', '--file', join(dir, 'altered.jsonl'), '--public-key', publicKeyFile]);
    assert.equal(caught.code, 1);
    assert.match(caught.stdout, /^BROKEN at #\d+ \(altered\)/);
  });

  it('builds one export at a time per instance: another asked for meanwhile is refused with 429 and a Retry-After', async () => {
    const held = await holdAnExport(kh, auditor.session);
    let heldStatus: number;
    try {
      const second = await kh.adminHttp(admin.session).get('/api/v1/audit/export');
      assert.equal(second.status, 429, second.text);
      assert.equal(second.headers['retry-after'], '5');
      assert.match(second.body.error.message, /another audit export is being built on this instance; retry in 5 s/);
    } finally {
      heldStatus = await held.release();
    }
    assert.equal(heldStatus, 200, 'the held export completes');
    const next = await kh.adminHttp(auditor.session).get('/api/v1/audit/export').expect(200);
    assert.ok(next.text.split('\n')[0].includes('"type":"header"'));
  });

  it('kmsctl audit verify catches rows altered, deleted or reordered in Postgres, naming the first broken link', async () => {
    assert.equal((await verifyDatabase()).code, 0);
    const [{ max }] = await kh.dataSource.query('SELECT max(sequence)::int AS max FROM keyhold_audit_records');
    const target = Math.floor(max / 2);

    const original: Row = await record(target);
    await kh.dataSource.query(`UPDATE keyhold_audit_records SET actor = 'someone-else' WHERE sequence = $1`, [target]);
    const altered = await verifyDatabase();
    assert.equal(altered.code, 1);
    assert.match(altered.stdout, new RegExp(`^BROKEN at #${target} \\(altered\\)`));
    await kh.dataSource.query(`UPDATE keyhold_audit_records SET actor = $2 WHERE sequence = $1`, [target, original.actor]);
    assert.equal((await verifyDatabase()).code, 0, 'restored');

    const removed: Row = await record(target + 1);
    await kh.dataSource.query('DELETE FROM keyhold_audit_records WHERE sequence = $1', [target + 1]);
    const deleted = await verifyDatabase();
    assert.equal(deleted.code, 1);
    assert.match(deleted.stdout, new RegExp(`^BROKEN at #${target + 1} \\(deleted\\)`));
    const columns = Object.keys(removed);
    await kh.dataSource.query(
      `INSERT INTO keyhold_audit_records (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`,
      columns.map((column) => removed[column]),
    );
    assert.equal((await verifyDatabase()).code, 0, 'restored');

    const swap = async () => {
      await kh.dataSource.query('UPDATE keyhold_audit_records SET sequence = 999999999999 WHERE sequence = $1', [target]);
      await kh.dataSource.query('UPDATE keyhold_audit_records SET sequence = $1 WHERE sequence = $2', [target, target + 1]);
      await kh.dataSource.query('UPDATE keyhold_audit_records SET sequence = $1 WHERE sequence = 999999999999', [target + 1]);
    };
    await swap();
    const reordered = await verifyDatabase();
    assert.equal(reordered.code, 1);
    assert.match(reordered.stdout, new RegExp(`^BROKEN at #${target} \\(reordered\\)`));
    await swap();
    assert.equal((await verifyDatabase()).code, 0, 'restored');

    const [last] = await kh.dataSource.query('SELECT max(sequence)::int AS max FROM keyhold_audit_records');
    const lastRow: Row = await record(last.max);
    await kh.dataSource.query('DELETE FROM keyhold_audit_records WHERE sequence = $1', [last.max]);
    const truncated = await verifyDatabase();
    assert.equal(truncated.code, 1);
    assert.match(truncated.stdout, new RegExp(`^BROKEN at #${last.max} \\(deleted\\)`));
    await insertRows([lastRow]);
    assert.equal((await verifyDatabase()).code, 0, 'restored');
  });

  it('kmsctl audit verify catches a tail deleted after a signed checkpoint with the head rewound (database and export)', async () => {
    const [{ sequence: kept }] = await kh.dataSource.query('SELECT sequence::int AS sequence FROM keyhold_audit_chain_head');
    for (let i = 0; i < 3; i += 1) await kh.http().post('/v1/random').send({ bytes: 8 }).expect(200);
    const checkpoint = await kh.server.audit.checkpointer.checkpoint();
    assert.ok(checkpoint && checkpoint.sequence >= kept + 3, 'a checkpoint past the records about to go');
    assert.equal((await verifyDatabase()).code, 0);

    // Someone with write access to the database deletes the tail and rewinds the head to the last record kept:
    // the chain and the head agree again; only the signed checkpoint past the end tells.
    const [headBefore] = await kh.dataSource.query('SELECT sequence::text AS sequence, hash FROM keyhold_audit_chain_head');
    const removed: Row[] = await kh.dataSource.query('SELECT * FROM keyhold_audit_records WHERE sequence > $1 ORDER BY sequence', [kept]);
    await kh.dataSource.query('DELETE FROM keyhold_audit_records WHERE sequence > $1', [kept]);
    await kh.dataSource.query('UPDATE keyhold_audit_chain_head SET sequence = $1, hash = $2 WHERE id = 1', [kept, (await record(kept)).hash]);
    try {
      const expected = new RegExp(`^BROKEN at #${kept + 1} \\(deleted\\): records after #${kept} are missing: a signed checkpoint covers sequence #${checkpoint.sequence}`);
      const whole = await verifyDatabase();
      assert.equal(whole.code, 1, whole.stdout + whole.stderr);
      assert.match(whole.stdout, expected);
      // A range that starts later, or ends past the last record, reaches the checkpoint too.
      const from = await kmsctl(['audit', 'verify', '--public-key', publicKeyFile, '--from-sequence', String(kept - 2)], { KEYHOLD_AUDIT_DATABASE_URL: readerUrl });
      assert.match(from.stdout, expected);
      const to = await kmsctl(['audit', 'verify', '--public-key', publicKeyFile, '--to-sequence', String(checkpoint.sequence)], { KEYHOLD_AUDIT_DATABASE_URL: readerUrl });
      assert.equal(to.code, 1);
      assert.match(to.stdout, expected);
      // A range that ends before the deletion is intact.
      const before = await kmsctl(['audit', 'verify', '--public-key', publicKeyFile, '--to-sequence', String(kept - 1)], { KEYHOLD_AUDIT_DATABASE_URL: readerUrl });
      assert.equal(before.code, 0, before.stdout);
      // An export to the head carries the checkpoints past its last record, so the file shows it as well.
      const file = join(dir, 'truncated.jsonl');
      assert.equal((await kmsctl(['audit', 'export', '--out', file], { KEYHOLD_AUDIT_DATABASE_URL: readerUrl })).code, 0);
      const offline = await kmsctl(['audit', 'verify', '--file', file, '--public-key', publicKeyFile]);
      assert.equal(offline.code, 1);
      assert.match(offline.stdout, expected);
      // The checkpointer will not sign the rewound head either.
      await assert.rejects(kh.server.audit.checkpointer.checkpoint(), /checkpoint refused: the chain head #\d+ is behind/);
    } finally {
      await insertRows(removed);
      await kh.dataSource.query('UPDATE keyhold_audit_chain_head SET sequence = $1, hash = $2 WHERE id = 1', [headBefore.sequence, headBefore.hash]);
    }
    assert.equal((await verifyDatabase()).code, 0, 'restored');
  });

  it('the checkpointer signs only a chain that verifies since the last checkpoint; a refusal shows in the admin API', async () => {
    const checkpoints = (auditorHttp = kh.adminHttp(auditor.session)) => auditorHttp.get('/api/v1/audit/checkpoints').expect(200);
    const sign = () => kh.adminHttp(auditor.session).post('/api/v1/audit/checkpoints').set('x-csrf-token', auditor.session.csrfToken);
    await kh.http().post('/v1/random').send({ bytes: 8 }).expect(200);
    const signed = await sign().expect(200);
    assert.ok(signed.body.checkpoint, 'the normal path signs');
    assert.deepEqual((await checkpoints()).body.signing, { status: 'ok', refusal: null });
    // The list is the latest checkpoints, oldest first (100 unless asked); the export carries every one in range.
    const newest = (await kh.adminHttp(auditor.session).get('/api/v1/audit/checkpoints?limit=1').expect(200)).body.checkpoints;
    assert.deepEqual(newest.map((checkpoint: { sequence: number }) => checkpoint.sequence), [signed.body.checkpoint.sequence]);
    const listed = (await checkpoints()).body.checkpoints.map((checkpoint: { sequence: number }) => checkpoint.sequence);
    assert.deepEqual(listed, [...listed].sort((a: number, b: number) => a - b));
    assert.ok(listed.length <= 100 && listed.at(-1) === signed.body.checkpoint.sequence);
    for (const limit of ['0', '1001', 'x']) await kh.adminHttp(auditor.session).get(`/api/v1/audit/checkpoints?limit=${limit}`).expect(400);

    // A record after that checkpoint altered in place: the chain since it no longer verifies.
    const encrypted = await kh.http().post('/v1/keys/audited/encrypt').send({ plaintext: 'YWx0ZXJlZA==' }).expect(200);
    const target = sequenceOf(encrypted);
    assert.ok(target > signed.body.checkpoint.sequence);
    const original: Row = await record(target);
    await kh.dataSource.query(`UPDATE keyhold_audit_records SET operation = 'random', key_name = NULL WHERE sequence = $1`, [target]);
    const [{ count: before }] = await kh.dataSource.query('SELECT count(*)::int AS count FROM keyhold_audit_checkpoints');
    const refused = await sign();
    assert.equal(refused.status, 409, refused.text);
    assert.equal(refused.body.error.code, 'INVALID_STATE');
    assert.match(refused.body.error.message, new RegExp(`checkpoint refused: record #${target} was altered`));
    const [{ count: after }] = await kh.dataSource.query('SELECT count(*)::int AS count FROM keyhold_audit_checkpoints');
    assert.equal(after, before, 'nothing signed');
    const status = (await checkpoints()).body.signing;
    assert.equal(status.status, 'refused');
    assert.deepEqual([status.refusal.sinceSequence, typeof status.refusal.headSequence], [signed.body.checkpoint.sequence, 'number']);
    assert.match(status.refusal.reason, new RegExp(`record #${target} was altered`));
    // Monitoring sees the alarm on the service plane's health, without an admin session; the instance still serves.
    const alarmed = await kh.http().get('/v1/health').expect(200);
    assert.deepEqual([alarmed.body.status, alarmed.body.audit], ['ok', { signing: 'refused' }]);
    // The periodic path refuses the same way (and says so in the log, without failing anything else).
    await assert.rejects(kh.server.audit.checkpointer.checkpoint(), /checkpoint refused/);
    await kh.http().post('/v1/random').send({ bytes: 8 }).expect(200);

    // Restored: the next checkpoint is signed, and the refusal clears.
    await kh.dataSource.query('UPDATE keyhold_audit_records SET operation = $2, key_name = $3 WHERE sequence = $1', [target, original.operation, original.key_name]);
    const again = await sign().expect(200);
    assert.ok(again.body.checkpoint.sequence > target);
    assert.deepEqual((await checkpoints()).body.signing, { status: 'ok', refusal: null });
    assert.deepEqual((await kh.http().get('/v1/health').expect(200)).body.audit, { signing: 'ok' });

    // Rewritten after the checkpoint AND re-hashed up to a new head: a consistent chain, but not through the
    // record this instance last wrote itself.
    await kh.http().post('/v1/random').send({ bytes: 8 }).expect(200);
    const rows: Row[] = await kh.dataSource.query('SELECT * FROM keyhold_audit_records WHERE sequence > $1 ORDER BY sequence', [again.body.checkpoint.sequence]);
    const [headBefore] = await kh.dataSource.query('SELECT sequence::text AS sequence, hash FROM keyhold_audit_chain_head');
    const views = rows.map(auditRecordFromRow);
    const rewritten = chainRecords(again.body.checkpoint.sequence, again.body.checkpoint.headHash, views.map((view, i) => ({ ...view, actor: i === 0 ? 'someone-else' : view.actor })));
    const rewrite = async (chain: ReadonlyArray<{ sequence: number; actor: string | null; prevHash: string; hash: string }>) => {
      for (const r of chain) await kh.dataSource.query('UPDATE keyhold_audit_records SET actor = $2, prev_hash = $3, hash = $4 WHERE sequence = $1', [r.sequence, r.actor, r.prevHash, r.hash]);
      await kh.dataSource.query('UPDATE keyhold_audit_chain_head SET hash = $1 WHERE id = 1', [chain[chain.length - 1].hash]);
    };
    await rewrite(rewritten);
    try {
      await assert.rejects(kh.server.audit.checkpointer.checkpoint(), /is not the one this instance wrote: the chain up to it was rewritten and re-hashed/);
      assert.equal(kh.server.audit.checkpointer.signingStatus().status, 'refused');
    } finally {
      await rewrite(views);
      assert.equal(headBefore.hash, views[views.length - 1].hash);
    }
    const latest = await kh.server.audit.checkpointer.checkpoint();
    assert.ok(latest, 'signs again once restored');
    assert.equal((await verifyDatabase()).code, 0);

    // Records after the latest checkpoint deleted and the head rewound onto it: nothing signed covers them, so
    // kmsctl cannot tell, but this instance wrote the last of them and will not sign over their absence.
    await kh.http().post('/v1/random').send({ bytes: 8 }).expect(200);
    const [headNow] = await kh.dataSource.query('SELECT sequence::text AS sequence, hash FROM keyhold_audit_chain_head');
    const tail: Row[] = await kh.dataSource.query('SELECT * FROM keyhold_audit_records WHERE sequence > $1 ORDER BY sequence', [latest.sequence]);
    await kh.dataSource.query('DELETE FROM keyhold_audit_records WHERE sequence > $1', [latest.sequence]);
    await kh.dataSource.query('UPDATE keyhold_audit_chain_head SET sequence = $1, hash = $2 WHERE id = 1', [latest.sequence, latest.headHash]);
    try {
      assert.equal((await verifyDatabase()).code, 0, 'the chain alone cannot tell');
      await assert.rejects(kh.server.audit.checkpointer.checkpoint(), new RegExp(`the chain head #${latest.sequence} is behind #${headNow.sequence}, which this instance wrote`));
    } finally {
      await insertRows(tail);
      await kh.dataSource.query('UPDATE keyhold_audit_chain_head SET sequence = $1, hash = $2 WHERE id = 1', [headNow.sequence, headNow.hash]);
    }
    assert.ok(await kh.server.audit.checkpointer.checkpoint());
  });

  it('the checkpointer re-verifies across pages: an alteration deep in a long stretch since the last checkpoint is caught', async () => {
    await kh.http().post('/v1/random').send({ bytes: 8 }).expect(200);
    const since = await kh.server.audit.checkpointer.checkpoint();
    // Far more records than one verification page, so the altered one sits on a later page.
    const items = Array.from({ length: 900 }, (_, index) => ({ plaintext: Buffer.from(`item ${index}`).toString('base64') }));
    const batch = await kh.http().post('/v1/keys/audited/encrypt/batch').send({ items }).expect(200);
    const [first, last] = String(batch.headers[HEADER]).split('-').map(Number);
    assert.ok(since && first > since.sequence && last - first === 899);
    const target = first + 700;
    const original: Row = await record(target);
    await kh.dataSource.query(`UPDATE keyhold_audit_records SET outcome = 'refused' WHERE sequence = $1`, [target]);
    try {
      await assert.rejects(kh.server.audit.checkpointer.checkpoint(), new RegExp(`checkpoint refused: record #${target} was altered`));
    } finally {
      await kh.dataSource.query('UPDATE keyhold_audit_records SET outcome = $2 WHERE sequence = $1', [target, original.outcome]);
    }
    const signed = await kh.server.audit.checkpointer.checkpoint();
    assert.ok(signed && signed.sequence >= last, 'signs over the whole stretch once restored');

    // A deleted stretch longer than a page: the walk goes over it in one lookup, and the checkpointer names where
    // the records go missing.
    const more = await kh.http().post('/v1/keys/audited/encrypt/batch').send({ items }).expect(200);
    const [start, end] = String(more.headers[HEADER]).split('-').map(Number);
    const removed: Row[] = await kh.dataSource.query('SELECT * FROM keyhold_audit_records WHERE sequence BETWEEN $1 AND $2 ORDER BY sequence', [start + 100, start + 549]);
    await kh.dataSource.query('DELETE FROM keyhold_audit_records WHERE sequence BETWEEN $1 AND $2', [start + 100, start + 549]);
    try {
      await assert.rejects(kh.server.audit.checkpointer.checkpoint(), new RegExp(`checkpoint refused: .*#${start + 100}\\b`));
      const statements: string[] = [];
      const walked: number[][] = [];
      const query = (sql: string, values: unknown[]) => (statements.push(sql), kh.dataSource.query(sql, values));
      for await (const page of auditRecordPagesInRange(query, signed.sequence, end, 200)) walked.push(page.map((view) => view.sequence));
      const expected = Array.from({ length: end - signed.sequence }, (_, i) => signed.sequence + 1 + i).filter((n) => n < start + 100 || n > start + 549);
      assert.deepEqual(walked.flat(), expected, 'every stored record once, in order, none past the end');
      assert.ok(walked.every((page) => page.length > 0 && page.length <= 200), 'pages are never empty and never longer than asked');
      // Each query reads one stretch of 200 sequences; the gap costs one stretch that came back empty and one lookup.
      assert.equal(statements.length, Math.ceil((end - signed.sequence - 450) / 200) + 2);
    } finally {
      await insertRows(removed);
    }
    assert.ok(await kh.server.audit.checkpointer.checkpoint(), 'signs once restored');
  });

  it('Postgres re-hashes the stored records exactly as crypto-core chains them, hostile strings and all, and catches what Keyhold catches', async () => {
    await kh.http().post('/v1/random').send({ bytes: 8 }).expect(200);
    const since = await kh.server.audit.checkpointer.checkpoint();
    assert.ok(since);
    // Everything JSON escapes, or might be thought to: quotes, backslashes, every short escape, other control
    // characters, DEL, the line and paragraph separators, astral and combining characters; and every nullable field null.
    const hostile: AuditEntry[] = [
      { actor: 'he said "hi" \\ and \\"', keyName: '\u0001\u0008\u000c\n\r\t\u001f\u007f', requestId: '\u2028\u2029 🔑 鍵 e\u0301 \u00a0', sourceAddress: '</script><!--', errorCode: "'; DROP TABLE x; --", contextHmac: 'f'.repeat(64), keyVersion: 2_147_483_647 },
      { actor: null, keyName: null, requestId: null, sourceAddress: null, errorCode: null, contextHmac: null, keyVersion: null },
      { actor: '/\\/ \\u0041 \u0085 \ud83d\ude00', keyName: '{"a":[1,null]}', requestId: ' ', sourceAddress: '::1', errorCode: 'NOT_FOUND', contextHmac: null, keyVersion: 0 },
    ].map((fields) => ({ time: new Date().toISOString(), plane: 'system' as const, operation: 'test.hostile', outcome: 'error' as const, ...fields }));
    const written = await kh.dataSource.transaction((manager) => appendLocked((sql, parameters) => manager.query(sql, parameters), hostile));
    await kh.http().post('/v1/random').send({ bytes: 8 }).expect(200); // and one more through the group commit after them
    const [head] = await kh.dataSource.query('SELECT sequence::text AS sequence, hash FROM keyhold_audit_chain_head');
    const to = { sequence: Number(head.sequence), hash: head.hash as string };
    const from = { sequence: since.sequence, hash: since.headHash };
    const query = (sql: string, parameters?: unknown[]) => kh.dataSource.query(sql, parameters);
    const mine = written[1];
    // One stretch, and stretches of two: each anchored on the last hash of the one before.
    for (const stretch of [10_000, 2]) assert.equal(await chainVerifiesInDatabase(query, from, to, mine, stretch), true, `stretches of ${stretch}`);
    assert.equal(await verifyStoredChain(query, from, to, 200), null, 'and crypto-core agrees');
    // What crypto-core catches, Postgres catches: a field altered, a record gone, the wrong end, a known hash not there.
    const target = written[0];
    await kh.dataSource.query('UPDATE keyhold_audit_records SET key_name = $2 WHERE sequence = $1', [target.sequence, target.keyName?.replace('\t', ' ')]);
    try {
      assert.equal(await chainVerifiesInDatabase(query, from, to, null), false, 'altered');
      assert.match(String(await verifyStoredChain(query, from, to, 200)), new RegExp(`record #${target.sequence} was altered`));
    } finally {
      await kh.dataSource.query('UPDATE keyhold_audit_records SET key_name = $2 WHERE sequence = $1', [target.sequence, target.keyName]);
    }
    const removed: Row[] = await kh.dataSource.query('SELECT * FROM keyhold_audit_records WHERE sequence = $1', [mine.sequence]);
    await kh.dataSource.query('DELETE FROM keyhold_audit_records WHERE sequence = $1', [mine.sequence]);
    try {
      assert.equal(await chainVerifiesInDatabase(query, from, to, null), false, 'deleted');
    } finally {
      await insertRows(removed);
    }
    assert.equal(await chainVerifiesInDatabase(query, from, { ...to, hash: mine.hash }, null), false, 'another head');
    assert.equal(await chainVerifiesInDatabase(query, from, to, { ...mine, hash: written[0].hash }), false, 'a known record that is not there');
    await kh.dataSource.query(`UPDATE keyhold_audit_records SET prev_hash = 'not hex' WHERE sequence = $1`, [mine.sequence]);
    try {
      assert.equal(await chainVerifiesInDatabase(query, from, to, null), false, 'a hash Postgres cannot decode fails the check, not the caller');
    } finally {
      await kh.dataSource.query('UPDATE keyhold_audit_records SET prev_hash = $2 WHERE sequence = $1', [mine.sequence, mine.prevHash]);
    }
    const signed = await kh.server.audit.checkpointer.checkpoint();
    assert.ok(signed && signed.sequence >= to.sequence, 'the checkpointer signs over them');
    assert.equal((await verifyDatabase()).code, 0);
  });

  it('kmsctl and the admin API export past their fetch size through one cursor, filters and all', async () => {
    const items = Array.from({ length: 1000 }, (_, index) => ({ plaintext: Buffer.from(`more ${index}`).toString('base64') }));
    for (let call = 0; call < 6; call += 1) await kh.http().post('/v1/keys/audited/encrypt/batch').send({ items }).expect(200);
    const stored: Array<{ sequence: string }> = await kh.dataSource.query(
      `SELECT sequence FROM keyhold_audit_records WHERE key_name = 'audited' AND operation = 'encrypt' AND outcome = 'success' ORDER BY sequence`,
    );
    assert.ok(stored.length > 5000, 'more than one fetch of 5000');
    const file = join(dir, 'encrypts.jsonl');
    const exported = await kmsctl(['audit', 'export', '--key', 'audited', '--operation', 'encrypt', '--outcome', 'success', '--out', file], {
      KEYHOLD_AUDIT_DATABASE_URL: readerUrl,
    });
    assert.equal(exported.code, 0, exported.stderr);
    const records = readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line)).filter((line) => line.type === 'record');
    assert.deepEqual(records.map((record) => String(record.sequence)), stored.map((row) => row.sequence));
    assert.ok(records.every((record) => record.keyName === 'audited' && record.operation === 'encrypt' && record.outcome === 'success'));
    // The admin API's export reads through a cursor too, 1000 at a time.
    const api = await kh.adminHttp(auditor.session).get('/api/v1/audit/export?key=audited&operation=encrypt&outcome=success').expect(200);
    const apiRecords = api.text.trim().split('\n').map((line) => JSON.parse(line)).filter((line) => line.type === 'record');
    assert.deepEqual(apiRecords, records);
  });

  // Last: moving the clock two days ends the admin sessions above.
  it('records the scheduler\'s own changes (automatic rotation) as system:scheduler, in their transaction', async () => {
    await kh.http().post('/v1/keys').send({ name: 'rotates-itself', algorithm: 'aes-256-gcm', rotationPeriodDays: 1 }).expect(201);
    kh.clock.advanceDays(2);
    await kh.server.scheduler.runOnce();
    const rows: Row[] = await kh.dataSource.query(`SELECT * FROM keyhold_audit_records WHERE key_name = 'rotates-itself' AND operation = 'keys.rotate'`);
    assert.deepEqual(rows.map((r) => [r.plane, r.actor, r.key_version, r.request_id]), [['system', 'system:scheduler', 2, null]]);
  });

  // After everything else: a sealed Keyhold stays sealed here.
  it('records refusals while sealed (503 SEALED), without a context HMAC since its key is sealed too', async () => {
    await kh.server.seal.state.seal();
    const sealed = await kh.http().post('/v1/keys/audited/encrypt').send({ plaintext: 'aGk=', context: { tenant: 'acme' } });
    assert.equal(sealed.status, 503);
    assert.equal(sealed.body.error.code, 'SEALED');
    const row = await record(sequenceOf(sealed));
    assert.deepEqual([row.operation, row.outcome, row.error_code, row.context_hmac, row.actor], ['encrypt', 'error', 'SEALED', null, OPERATOR]);
  });
});
