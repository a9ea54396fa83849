import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestAdmin, enrolAdmin, setupTokenOf, signIn, stepUp } from '../support/test-admins';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

const HEADER = 'keyhold-audit-sequence';
type Row = Record<string, unknown>;
type Answer = { status: number; headers: Record<string, unknown>; body: { error?: { code: string } } };

/**
 * Passkey rename, sign-out, recovery-code redemption and the approved seal: each change commits with its
 * audit record in one transaction, so a record that cannot be written leaves the change undone (503).
 */
describe('audit: admin-plane changes recorded in their own transaction', () => {
  let kh: TestKeyhold;
  let alice: TestAdmin;

  /** The request's records: exactly one, a success, the one its header names. */
  const onlyRecordOf = async (answer: Answer, operation: string, actor: string): Promise<void> => {
    const requestId = answer.headers['x-request-id'];
    assert.ok(requestId, 'the answer names its request');
    const rows: Row[] = await kh.dataSource.query('SELECT sequence::int AS sequence, * FROM keyhold_audit_records WHERE request_id = $1', [requestId]);
    assert.equal(rows.length, 1, `one record of ${operation}, not ${JSON.stringify(rows.map((r) => r.operation))}`);
    assert.deepEqual([rows[0].plane, rows[0].operation, rows[0].actor, rows[0].outcome], ['admin', operation, actor, 'success']);
    assert.equal(String(answer.headers[HEADER]), String(rows[0].sequence));
  };

  /** Runs `work` while every audit insert fails (a trigger), as an unwritable audit table would. */
  const withAuditRefused = async (work: () => Promise<void>): Promise<void> => {
    await kh.dataSource.query(`CREATE FUNCTION keyhold_test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit refused by the test'; END $$`);
    await kh.dataSource.query(`CREATE TRIGGER keyhold_test_refuse_audit BEFORE INSERT ON keyhold_audit_records FOR EACH ROW EXECUTE FUNCTION keyhold_test_refuse_audit()`);
    try {
      await work();
    } finally {
      await kh.dataSource.query('DROP TRIGGER keyhold_test_refuse_audit ON keyhold_audit_records');
      await kh.dataSource.query('DROP FUNCTION keyhold_test_refuse_audit()');
    }
  };

  const assertUnavailable = (answer: Answer): void => {
    assert.equal(answer.status, 503, JSON.stringify(answer.body));
    assert.equal(answer.body.error?.code, 'UNAVAILABLE');
    assert.equal(answer.headers[HEADER], undefined);
  };

  before(async () => {
    kh = await startTestKeyhold({ admin: true });
    alice = await enrolAdmin(kh, 'alice', setupTokenOf(kh));
  });
  after(() => kh.stop());

  it('renames a passkey with its record, or not at all', async () => {
    const http = kh.adminHttp(alice.session);
    const [passkey] = (await http.get('/api/v1/me/passkeys').expect(200)).body.passkeys;
    await withAuditRefused(async () => {
      assertUnavailable(await http.patch(`/api/v1/me/passkeys/${passkey.id}`).send({ name: 'never named' }));
    });
    const [unchanged] = await kh.dataSource.query('SELECT name FROM keyhold_passkeys WHERE id = $1', [passkey.id]);
    assert.equal(unchanged.name, passkey.name, 'the rename rolled back with its record');

    const renamed = await http.patch(`/api/v1/me/passkeys/${passkey.id}`).send({ name: 'desk key' }).expect(200);
    assert.equal(renamed.body.passkeys[0].name, 'desk key');
    await onlyRecordOf(renamed, 'passkeys.rename', `admin:${alice.id}`);
    // No such passkey: nothing changed, and the refusal is recorded as one.
    const missing = await http.patch('/api/v1/me/passkeys/00000000-0000-0000-0000-000000000000').send({ name: 'x' }).expect(404);
    const [refusal] = await kh.dataSource.query('SELECT operation, outcome, error_code FROM keyhold_audit_records WHERE sequence = $1', [Number(missing.headers[HEADER])]);
    assert.deepEqual([refusal.operation, refusal.outcome, refusal.error_code], ['passkeys.rename', 'refused', 'NOT_FOUND']);
  });

  it('signs out with its record, or not at all; the same for signing out everywhere', async () => {
    const session = await signIn(kh, alice.authenticator);
    await withAuditRefused(async () => {
      assertUnavailable(await kh.adminHttp(session).delete('/api/v1/session'));
      assertUnavailable(await kh.adminHttp(session).post('/api/v1/session/sign-out-everywhere'));
    });
    await kh.adminHttp(session).get('/api/v1/session').expect(200);
    await kh.adminHttp(alice.session).get('/api/v1/session').expect(200);

    const signedOut = await kh.adminHttp(session).delete('/api/v1/session').expect(204);
    await onlyRecordOf(signedOut, 'admin.sign-out', `admin:${alice.id}`);
    assert.equal((await kh.adminHttp(session).get('/api/v1/session')).status, 401);

    const other = await signIn(kh, alice.authenticator);
    const everywhere = await kh.adminHttp(other).post('/api/v1/session/sign-out-everywhere').expect(200);
    assert.ok(everywhere.body.revokedSessions >= 2);
    await onlyRecordOf(everywhere, 'admin.sign-out-everywhere', `admin:${alice.id}`);
    assert.equal((await kh.adminHttp(alice.session).get('/api/v1/session')).status, 401);
    alice.session = await signIn(kh, alice.authenticator);
  });

  it('redeems a recovery code with its record (by the administrator whose code it is), or not at all', async () => {
    const codes: string[] = (await kh.adminHttp(alice.session).post('/api/v1/me/recovery-codes').send({ stepUp: await stepUp(kh, alice, 'recovery-codes') }).expect(200)).body.recoveryCodes;
    const recoveryTokens = async () => (await kh.dataSource.query(`SELECT count(*)::int AS n FROM keyhold_enrolment_tokens WHERE kind = 'recovery'`))[0].n as number;
    const unusedCodes = async () => (await kh.dataSource.query('SELECT count(*)::int AS n FROM keyhold_recovery_codes WHERE admin_id = $1 AND used_at IS NULL', [alice.id]))[0].n as number;
    assert.equal(await unusedCodes(), codes.length);
    await withAuditRefused(async () => {
      assertUnavailable(await kh.adminHttp().post('/api/v1/recovery').send({ name: 'alice', code: codes[0] }));
    });
    assert.equal(await unusedCodes(), codes.length, 'the code is not used up without its record');
    assert.equal(await recoveryTokens(), 0, 'no enrolment opened without its record');

    const redeemed = await kh.adminHttp().post('/api/v1/recovery').send({ name: 'alice', code: codes[0] }).expect(200);
    assert.ok(redeemed.body.token);
    await onlyRecordOf(redeemed, 'admin.recovery', `admin:${alice.id}`);
    assert.equal(await unusedCodes(), codes.length - 1);
    assert.equal(await recoveryTokens(), 1);
    // A refused redemption is still recorded, by the request's own record: as a refusal, by no one signed in.
    const reused = await kh.adminHttp().post('/api/v1/recovery').send({ name: 'alice', code: codes[0] }).expect(401);
    const [refusal] = await kh.dataSource.query('SELECT operation, outcome, error_code, actor FROM keyhold_audit_records WHERE sequence = $1', [Number(reused.headers[HEADER])]);
    assert.deepEqual([refusal.operation, refusal.outcome, refusal.error_code, refusal.actor], ['admin.recovery', 'refused', 'UNAUTHENTICATED', null]);
  });

  it('records a master-key rotation request and the approved rotation in their transactions', async () => {
    const versions = async () => (await kh.dataSource.query('SELECT count(*)::int AS n FROM keyhold_master_key_versions'))[0].n as number;
    const operations = async () => (await kh.dataSource.query(`SELECT count(*)::int AS n FROM keyhold_pending_operations WHERE kind = 'rotate-master-key'`))[0].n as number;
    await withAuditRefused(async () => {
      assertUnavailable(await kh.adminHttp(alice.session).post('/api/v1/master-key/rotate').send({}));
    });
    assert.equal(await operations(), 0, 'no pending operation without its record');

    const requested = await kh.adminHttp(alice.session).post('/api/v1/master-key/rotate').send({}).expect(201);
    await onlyRecordOf(requested, 'master-key.rotate-request', `admin:${alice.id}`);
    const before = await versions();
    const response = await alice.authenticator.getAssertion(requested.body.assertionOptions);
    const approved = await kh.adminHttp(alice.session).post(`/api/v1/operations/${requested.body.operation.id}/approvals`).send({ response }).expect(200);
    assert.equal(approved.body.status, 'executed', JSON.stringify(approved.body));
    assert.equal(await versions(), before + 1);
    // The rotation in its transaction, then the approval in its own: the answer names both.
    const [first, last] = String(approved.headers[HEADER]).split('-').map(Number);
    const rows: Row[] = await kh.dataSource.query('SELECT operation, key_version, actor FROM keyhold_audit_records WHERE sequence BETWEEN $1 AND $2 ORDER BY sequence', [first, last]);
    // The approval (which claims the operation) first, then the rotation it ran.
    assert.deepEqual(rows.map((r) => [r.operation, r.key_version, r.actor]), [
      ['operations.approve', null, `admin:${alice.id}`],
      ['master-key.rotate', before + 1, `admin:${alice.id}`],
    ]);
  });

  // Last: the in-memory master key of this instance cannot be unsealed again.
  it('seals with the approval and its record, or not at all', async () => {
    const generation = async () => (await kh.dataSource.query('SELECT generation::int AS g FROM keyhold_seal_generation WHERE id = 1'))[0].g as number;
    const before = await generation();
    const requested = await kh.adminHttp(alice.session).post('/api/v1/seal').send({}).expect(201);
    await onlyRecordOf(requested, 'operations.request.seal', `admin:${alice.id}`);
    const id = requested.body.operation.id as string;
    // A fresh assertion over the operation each time (reading it is recorded, so not while records fail).
    const assertion = async () => {
      const fetched = await kh.adminHttp(alice.session).get(`/api/v1/operations/${id}`).expect(200);
      return alice.authenticator.getAssertion(fetched.body.assertionOptions);
    };
    const approve = async (response: unknown) => kh.adminHttp(alice.session).post(`/api/v1/operations/${id}/approvals`).send({ response });

    const refusedAssertion = await assertion();
    await withAuditRefused(async () => {
      assertUnavailable(await approve(refusedAssertion));
    });
    assert.equal(kh.server.seal.state.sealed, false, 'not sealed without its record');
    assert.equal(await generation(), before, 'no seal generation without its record');
    const [pending] = await kh.dataSource.query('SELECT status FROM keyhold_pending_operations WHERE id = $1', [id]);
    assert.equal(pending.status, 'pending');
    assert.deepEqual(await kh.dataSource.query('SELECT 1 FROM keyhold_approvals WHERE operation_id = $1', [id]), []);
    await kh.http().get('/v1/keys').expect(200);

    const approved = await approve(await assertion());
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    assert.equal((approved.body as unknown as { status: string }).status, 'executed');
    await onlyRecordOf(approved, 'operations.approve', `admin:${alice.id}`);
    assert.equal(await generation(), before + 1);
    assert.equal(kh.server.seal.state.sealed, true, 'this instance sealed once the seal committed');
    assert.equal((await kh.http().get('/v1/keys').expect(503)).body.error.code, 'SEALED');
  });
});
