import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestAdmin, enrolAdmin, inviteAdmin, setupTokenOf, signIn } from '../support/test-admins';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

/** alice (the first admin) invites bob and carol as admins and olga as operator, while the quorum is still 1. */
async function enrolThreeAdminsAndAnOperator(kh: TestKeyhold): Promise<Record<'alice' | 'bob' | 'carol' | 'olga', TestAdmin>> {
  const alice = await enrolAdmin(kh, 'alice', setupTokenOf(kh));
  return {
    alice,
    bob: await inviteAdmin(kh, alice, 'bob', 'admin'),
    carol: await inviteAdmin(kh, alice, 'carol', 'admin'),
    olga: await inviteAdmin(kh, alice, 'olga', 'operator'),
  };
}

describe('approvals bound to the exact operation: a 2-of-3 quorum', () => {
  let kh: TestKeyhold;
  const admins: Record<string, TestAdmin> = {};


  async function approve(admin: TestAdmin, id: string, challengeSource?: string) {
    const fetched = await kh.adminHttp(admin.session).get(`/api/v1/operations/${challengeSource ?? id}`).expect(200);
    const response = await admin.authenticator.getAssertion(fetched.body.assertionOptions);
    return { response, answer: await kh.adminHttp(admin.session).post(`/api/v1/operations/${id}/approvals`).send({ response }) };
  }

  before(async () => {
    kh = await startTestKeyhold({ admin: true });
    Object.assign(admins, await enrolThreeAdminsAndAnOperator(kh));
  });
  after(() => kh.stop());

  /** What a crash between the claim and the end of the run leaves behind: claimed `ago` ms before now, never decided. */
  async function leaveExecuting(id: string, ago: number) {
    await kh.dataSource.query(`UPDATE keyhold_pending_operations SET status = 'executing', claimed_at = $2 WHERE id = $1`, [
      id,
      new Date(kh.clock.now().getTime() - ago),
    ]);
  }

  it('changes the quorum itself through an approval', async () => {
    const requested = await kh.adminHttp(admins.alice.session).post('/api/v1/operations').send({ kind: 'set-quorum', approvals: 2 });
    assert.equal(requested.status, 201, requested.text);
    assert.equal(requested.body.operation.requiredApprovals, 1);
    const { answer } = await approve(admins.alice, requested.body.operation.id);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.body.status, 'executed');
    const list = await kh.adminHttp(admins.bob.session).get('/api/v1/operations').expect(200);
    assert.equal(list.body.quorum, 2);
  });

  it('destroys a key at once only after two distinct admins sign that exact operation; replays fail', async () => {
    await kh.http().post('/v1/keys').send({ name: 'doomed-now', algorithm: 'aes-256-gcm' }).expect(201);
    const ciphertext = (await kh.http().post('/v1/keys/doomed-now/encrypt').send({ plaintext: 'Ynll' }).expect(200)).body.ciphertext;
    await kh.http().post('/v1/keys').send({ name: 'bystander', algorithm: 'aes-256-gcm' }).expect(201);

    const destroy = await kh.adminHttp(admins.alice.session).post('/api/v1/operations').send({ kind: 'destroy-key-now', key: 'doomed-now' }).expect(201);
    const other = await kh.adminHttp(admins.alice.session).post('/api/v1/operations').send({ kind: 'destroy-key-now', key: 'bystander' }).expect(201);
    const id = destroy.body.operation.id;
    assert.equal(destroy.body.operation.requiredApprovals, 2);
    assert.notEqual(destroy.body.operation.challenge, other.body.operation.challenge);

    const bobFirst = await approve(admins.bob, id);
    assert.equal(bobFirst.answer.status, 409, 'the requester signs first');

    const olga = await approve(admins.olga, id);
    assert.equal(olga.answer.status, 403, 'an operator cannot approve');

    const alice = await approve(admins.alice, id);
    assert.equal(alice.answer.status, 200, alice.answer.text);
    assert.equal(alice.answer.body.status, 'pending');
    assert.equal(alice.answer.body.approvals.length, 1);

    const replayed = await kh.adminHttp(admins.alice.session).post(`/api/v1/operations/${id}/approvals`).send({ response: alice.response });
    assert.notEqual(replayed.status, 200, 'the same approval twice does not count twice');
    const stolen = await kh.adminHttp(admins.bob.session).post(`/api/v1/operations/${id}/approvals`).send({ response: alice.response });
    assert.notEqual(stolen.status, 200, "alice's assertion does not approve as bob");

    const aliceOnOther = await approve(admins.alice, other.body.operation.id);
    assert.equal(aliceOnOther.answer.status, 200);
    const bobForOther = await kh.adminHttp(admins.bob.session).get(`/api/v1/operations/${other.body.operation.id}`).expect(200);
    const bobAssertionForOther = await admins.bob.authenticator.getAssertion(bobForOther.body.assertionOptions);
    const crossed = await kh.adminHttp(admins.bob.session).post(`/api/v1/operations/${id}/approvals`).send({ response: bobAssertionForOther });
    assert.equal(crossed.status, 401, 'an approval of another operation does not approve this one');
    assert.equal((await kh.client().getKey('doomed-now')).state, 'enabled', 'nothing happened yet');

    const bob = await approve(admins.bob, id);
    assert.equal(bob.answer.status, 200, bob.answer.text);
    assert.equal(bob.answer.body.status, 'executed');
    assert.equal(bob.answer.body.approvals.length, 2);
    assert.equal(bob.answer.body.claimedAt, kh.clock.now().toISOString(), 'claimed by the approval that completed the quorum');
    assert.equal(bob.answer.body.interruptibleAt, null);
    const key = await kh.client().getKey('doomed-now');
    assert.equal(key.state, 'destroyed');
    const rows = await kh.dataSource.query(
      `SELECT v.wrapped_material FROM keyhold_key_versions v JOIN keyhold_keys k ON k.id = v.key_id WHERE k.name = 'doomed-now'`,
    );
    assert.ok(rows.every((row: { wrapped_material: Buffer | null }) => row.wrapped_material === null));
    const decrypt = await kh.http().post('/v1/decrypt').send({ ciphertext });
    assert.equal(decrypt.body.error.code, 'KEY_VERSION_DESTROYED');
    assert.equal((await kh.client().getKey('bystander')).state, 'enabled', 'the other operation still waits');

    const late = await approve(admins.carol, id);
    assert.equal(late.answer.status, 409, 'an executed operation takes no more approvals');
  });

  it('lets approvals expire, and admins reject', async () => {
    await kh.http().post('/v1/keys').send({ name: 'slow', algorithm: 'aes-256-gcm' }).expect(201);
    const requested = await kh.adminHttp(admins.alice.session).post('/api/v1/operations').send({ kind: 'destroy-key-now', key: 'slow' }).expect(201);
    const fetched = await kh.adminHttp(admins.alice.session).get(`/api/v1/operations/${requested.body.operation.id}`).expect(200);
    kh.clock.advanceMs(61 * 60_000);
    const response = await admins.alice.authenticator.getAssertion(fetched.body.assertionOptions);
    // Sessions idle out after 30 minutes: sign in again first.
    const options = await kh.adminHttp().post('/api/v1/session/options').expect(200);
    const signedIn = await kh.adminHttp().post('/api/v1/session').send({ response: await admins.alice.authenticator.getAssertion(options.body) }).expect(200);
    admins.alice.session = { cookie: String(signedIn.headers['set-cookie']).split(';')[0], csrfToken: signedIn.body.csrfToken };
    const expired = await kh.adminHttp(admins.alice.session).post(`/api/v1/operations/${requested.body.operation.id}/approvals`).send({ response });
    assert.equal(expired.status, 409);
    assert.match(expired.body.error.message, /expired/);

    const another = await kh.adminHttp(admins.alice.session).post('/api/v1/operations').send({ kind: 'destroy-key-now', key: 'slow' }).expect(201);
    const rejected = await kh.adminHttp(admins.alice.session).post(`/api/v1/operations/${another.body.operation.id}/reject`).expect(200);
    assert.equal(rejected.body.status, 'rejected');
    assert.equal((await kh.client().getKey('slow')).state, 'enabled');
  });

  it('claims the operation with the approval that completes the quorum: an approval that cannot be recorded runs nothing', async () => {
    // The test before moved the clock past the sessions' idle limit.
    for (const admin of [admins.alice, admins.bob]) admin.session = await signIn(kh, admin.authenticator);
    await kh.http().post('/v1/keys').send({ name: 'claimed', algorithm: 'aes-256-gcm' }).expect(201);
    const requested = await kh.adminHttp(admins.alice.session).post('/api/v1/operations').send({ kind: 'destroy-key-now', key: 'claimed' }).expect(201);
    const id = requested.body.operation.id;
    assert.equal((await approve(admins.alice, id)).answer.body.status, 'pending');

    await kh.dataSource.query(`CREATE FUNCTION keyhold_test_refuse_approval() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.operation = 'operations.approve' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$`);
    await kh.dataSource.query('CREATE TRIGGER keyhold_test_refuse_approval BEFORE INSERT ON keyhold_audit_records FOR EACH ROW EXECUTE FUNCTION keyhold_test_refuse_approval()');
    try {
      const refused = await approve(admins.bob, id);
      assert.equal(refused.answer.status, 503, refused.answer.text);
      assert.equal(refused.answer.body.error.code, 'UNAVAILABLE');
    } finally {
      await kh.dataSource.query('DROP TRIGGER keyhold_test_refuse_approval ON keyhold_audit_records');
      await kh.dataSource.query('DROP FUNCTION keyhold_test_refuse_approval()');
    }
    assert.equal((await kh.client().getKey('claimed')).state, 'enabled', 'nothing ran');
    const still = await kh.adminHttp(admins.bob.session).get(`/api/v1/operations/${id}`).expect(200);
    assert.equal(still.body.operation?.status ?? still.body.status, 'pending');

    const done = await approve(admins.bob, id);
    assert.equal(done.answer.status, 200, done.answer.text);
    assert.equal(done.answer.body.status, 'executed');
    assert.equal((await kh.client().getKey('claimed')).state, 'destroyed');
    const [{ runs }] = await kh.dataSource.query(
      `SELECT count(*)::int AS runs FROM keyhold_audit_records WHERE key_name = 'claimed' AND operation NOT LIKE 'operations.%' AND operation <> 'keys.create' AND outcome = 'success' AND plane = 'admin'`,
    );
    assert.equal(runs, 1);
  });

  it('never runs an operation whose run was interrupted (left executing) again', async () => {
    await kh.http().post('/v1/keys').send({ name: 'interrupted', algorithm: 'aes-256-gcm' }).expect(201);
    const requested = await kh.adminHttp(admins.alice.session).post('/api/v1/operations').send({ kind: 'destroy-key-now', key: 'interrupted' }).expect(201);
    const id = requested.body.operation.id;
    await approve(admins.alice, id);
    // What a crash between the claim and the end of the run leaves behind.
    await leaveExecuting(id, 0);
    const again = await approve(admins.bob, id);
    assert.equal(again.answer.status, 409);
    assert.match(again.answer.body.error.message, /executing/);
    assert.equal((await kh.client().getKey('interrupted')).state, 'enabled');
  });

  it('marks an operation left executing interrupted, for admins only and only after the grace period; it never runs again', async () => {
    // An earlier test moved the clock past the sessions' idle limit.
    for (const admin of [admins.carol, admins.olga]) admin.session = await signIn(kh, admin.authenticator);
    await kh.http().post('/v1/keys').send({ name: 'cut-short', algorithm: 'aes-256-gcm' }).expect(201);
    const requested = await kh.adminHttp(admins.alice.session).post('/api/v1/operations').send({ kind: 'destroy-key-now', key: 'cut-short' }).expect(201);
    const id = requested.body.operation.id;
    const mark = (admin: TestAdmin, which = id) => kh.adminHttp(admin.session).post(`/api/v1/operations/${which}/mark-interrupted`);

    const pending = await mark(admins.bob);
    assert.equal(pending.status, 409, pending.text);
    assert.equal(pending.body.error.code, 'INVALID_STATE');
    assert.match(pending.body.error.message, /only an operation left executing .* this one is pending/);
    assert.equal((await mark(admins.bob, '00000000-0000-4000-8000-000000000000')).status, 404);

    await approve(admins.alice, id);
    // The crash: claimed a minute ago, never decided.
    await leaveExecuting(id, 60_000);
    const listed = await kh.adminHttp(admins.bob.session).get(`/api/v1/operations/${id}`).expect(200);
    assert.equal(listed.body.operation.status, 'executing');
    const claimedAt = Date.parse(listed.body.operation.claimedAt);
    assert.equal(claimedAt, kh.clock.now().getTime() - 60_000);
    assert.equal(Date.parse(listed.body.operation.interruptibleAt), claimedAt + 5 * 60_000);

    const early = await mark(admins.bob);
    assert.equal(early.status, 409, early.text);
    assert.equal(early.body.error.code, 'INVALID_STATE');
    assert.match(early.body.error.message, /may still be running; it can be marked interrupted from /);
    assert.equal((await mark(admins.olga)).status, 403, 'an operator cannot mark it');

    await leaveExecuting(id, 5 * 60_000 + 1_000);
    assert.equal((await mark(admins.olga)).status, 403, 'an operator cannot mark it, even after the grace period');
    const marked = await mark(admins.bob);
    assert.equal(marked.status, 200, marked.text);
    assert.equal(marked.body.status, 'interrupted');
    assert.equal(marked.body.interruptibleAt, null);
    assert.equal(marked.body.result.interrupted.markedBy, admins.bob.id);
    assert.match(marked.body.result.interrupted.message, /will not run again; check whether its effect took place .* request it again if needed/);

    const [row] = await kh.dataSource.query(`SELECT status, decided_at FROM keyhold_pending_operations WHERE id = $1`, [id]);
    assert.equal(row.status, 'interrupted');
    assert.equal((row.decided_at as Date).getTime(), kh.clock.now().getTime());
    const records = await kh.dataSource.query(
      `SELECT plane, actor, operation, outcome, error_code FROM keyhold_audit_records WHERE request_id = $1 ORDER BY sequence`,
      [marked.headers['x-request-id']],
    );
    assert.deepEqual(records, [{ plane: 'admin', actor: `admin:${admins.bob.id}`, operation: 'operations.mark-interrupted', outcome: 'success', error_code: null }]);
    const [refused] = await kh.dataSource.query(`SELECT operation, outcome, error_code FROM keyhold_audit_records WHERE request_id = $1`, [
      early.headers['x-request-id'],
    ]);
    assert.deepEqual(refused, { operation: 'operations.mark-interrupted', outcome: 'refused', error_code: 'INVALID_STATE' });

    const again = await mark(admins.carol);
    assert.equal(again.status, 409);
    assert.match(again.body.error.message, /this one is interrupted/);
    const late = await approve(admins.bob, id);
    assert.equal(late.answer.status, 409, 'an interrupted operation takes no more approvals');
    assert.match(late.answer.body.error.message, /interrupted/);
    const rejected = await kh.adminHttp(admins.carol.session).post(`/api/v1/operations/${id}/reject`);
    assert.equal(rejected.status, 409);
    assert.equal((await kh.client().getKey('cut-short')).state, 'enabled', 'it never ran');
  });
});

describe('who the admins are, under a quorum of 2: decided by approval, never by one admin', () => {
  let kh: TestKeyhold;
  const admins: Record<string, TestAdmin> = {};
  let staleAdminInvitation: string;

  async function approve(admin: TestAdmin, id: string) {
    const fetched = await kh.adminHttp(admin.session).get(`/api/v1/operations/${id}`).expect(200);
    const response = await admin.authenticator.getAssertion(fetched.body.assertionOptions);
    const answer = await kh.adminHttp(admin.session).post(`/api/v1/operations/${id}/approvals`).send({ response });
    assert.equal(answer.status, 200, answer.text);
    return answer.body as { status: string; approvals: unknown[] };
  }

  async function request(admin: TestAdmin, operation: object): Promise<string> {
    const requested = await kh.adminHttp(admin.session).post('/api/v1/operations').send(operation);
    assert.equal(requested.status, 201, requested.text);
    return requested.body.operation.id;
  }

  const roleOf = async (id: string) => (await kh.dataSource.query(`SELECT role FROM keyhold_admins WHERE id = $1`, [id]))[0].role;

  before(async () => {
    kh = await startTestKeyhold({ admin: true });
    Object.assign(admins, await enrolThreeAdminsAndAnOperator(kh));
    // Made while one approval sufficed, redeemed after the quorum went up.
    staleAdminInvitation = (await kh.adminHttp(admins.alice.session).post('/api/v1/admins/invitations').send({ role: 'admin' }).expect(201)).body.token;
    assert.equal((await approve(admins.alice, await request(admins.alice, { kind: 'set-quorum', approvals: 2 }))).status, 'executed');
  });
  after(() => kh.stop());

  it('refuses a single admin granting or taking away the admin role directly, and admin invitations', async () => {
    const alice = kh.adminHttp(admins.alice.session);
    const demote = await alice.patch(`/api/v1/admins/${admins.bob.id}`).send({ role: 'operator' });
    assert.equal(demote.status, 409, demote.text);
    assert.equal(demote.body.error.code, 'INVALID_STATE');
    assert.match(demote.body.error.message, /quorum of 2, granting or taking away the admin role needs approvals: request \{"kind":"set-admin-role"\}/);
    assert.equal((await alice.patch(`/api/v1/admins/${admins.olga.id}`).send({ role: 'admin' })).status, 409);
    const invite = await alice.post('/api/v1/admins/invitations').send({ role: 'admin' });
    assert.equal(invite.status, 409);
    assert.match(invite.body.error.message, /invite them as operator or auditor, then request \{"kind":"set-admin-role"\}/);
    const stale = await kh.adminHttp().post('/api/v1/enrolment/options').send({ token: staleAdminInvitation, name: 'mallory' });
    assert.equal(stale.status, 409, stale.text);
    assert.match(stale.body.error.message, /this link invites an admin/);
    assert.deepEqual([await roleOf(admins.bob.id), await roleOf(admins.olga.id)], ['admin', 'operator']);
    assert.equal((await kh.dataSource.query(`SELECT count(*)::int AS n FROM keyhold_admins WHERE name = 'mallory'`))[0].n, 0);

    // Between operator and auditor nothing changes who approves: still direct.
    assert.equal((await alice.patch(`/api/v1/admins/${admins.olga.id}`).send({ role: 'auditor' })).status, 200);
    assert.equal((await alice.patch(`/api/v1/admins/${admins.olga.id}`).send({ role: 'operator' })).status, 200);
    assert.equal((await alice.post('/api/v1/admins/invitations').send({ role: 'operator' })).status, 201);
  });

  it('changes an admin role with the quorum (set-admin-role); the demoted admin’s unused invitations stop working', async () => {
    const bobsInvitation = (await kh.adminHttp(admins.bob.session).post('/api/v1/admins/invitations').send({ role: 'operator' }).expect(201)).body.token;
    const id = await request(admins.alice, { kind: 'set-admin-role', adminId: admins.bob.id, role: 'operator' });
    assert.equal((await approve(admins.alice, id)).status, 'pending');
    assert.equal(await roleOf(admins.bob.id), 'admin', 'nothing happens on one approval');
    assert.equal((await approve(admins.carol, id)).status, 'executed');
    assert.equal(await roleOf(admins.bob.id), 'operator');
    const [record] = await kh.dataSource.query(
      `SELECT actor, outcome FROM keyhold_audit_records WHERE operation = 'admins.change-role' ORDER BY sequence DESC LIMIT 1`,
    );
    assert.deepEqual(record, { actor: `admin:${admins.carol.id}`, outcome: 'success' });
    const expired = await kh.adminHttp().post('/api/v1/enrolment/options').send({ token: bobsInvitation, name: 'mallory' });
    assert.equal(expired.status, 401, expired.text);
    assert.match(expired.body.error.message, /expired/);

    // Refused when asked: no change to make, or no such administrator.
    assert.equal((await kh.adminHttp(admins.alice.session).post('/api/v1/operations').send({ kind: 'set-admin-role', adminId: admins.bob.id, role: 'operator' })).status, 409);
    const unknown = await kh.adminHttp(admins.alice.session).post('/api/v1/operations').send({ kind: 'set-admin-role', adminId: '00000000-0000-4000-8000-000000000000', role: 'admin' });
    assert.equal(unknown.status, 404);
  });

  it('counts only the approvals of administrators who are still admins', async () => {
    // olga becomes admin (alice and carol approve): three admins again.
    const promote = await request(admins.alice, { kind: 'set-admin-role', adminId: admins.olga.id, role: 'admin' });
    await approve(admins.alice, promote);
    assert.equal((await approve(admins.carol, promote)).status, 'executed');

    await kh.http().post('/v1/keys').send({ name: 'half-approved', algorithm: 'aes-256-gcm' }).expect(201);
    const destroy = await request(admins.alice, { kind: 'destroy-key-now', key: 'half-approved' });
    assert.equal((await approve(admins.alice, destroy)).status, 'pending');

    // alice loses the admin role (carol and olga approve): her approval above no longer counts.
    const demote = await request(admins.carol, { kind: 'set-admin-role', adminId: admins.alice.id, role: 'operator' });
    await approve(admins.carol, demote);
    assert.equal((await approve(admins.olga, demote)).status, 'executed');
    assert.equal((await approve(admins.olga, destroy)).status, 'pending', 'alice’s approval was dropped from the count');
    assert.equal((await kh.client().getKey('half-approved')).state, 'enabled');
    assert.equal((await approve(admins.carol, destroy)).status, 'executed');
    assert.equal((await kh.client().getKey('half-approved')).state, 'destroyed');
  });

  it('keeps the last admin: the role cannot be taken from the only one left', async () => {
    // carol and olga are the admins; take it from olga, then try carol.
    const first = await request(admins.carol, { kind: 'set-admin-role', adminId: admins.olga.id, role: 'auditor' });
    await approve(admins.carol, first);
    assert.equal((await approve(admins.olga, first)).status, 'executed');
    const last = await request(admins.carol, { kind: 'set-admin-role', adminId: admins.carol.id, role: 'operator' });
    const outcome = await approve(admins.carol, last);
    assert.equal(outcome.status, 'failed');
    assert.equal(await roleOf(admins.carol.id), 'admin');
  });
});
