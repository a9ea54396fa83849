import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestAdmin, enrolAdmin, inviteAdmin, setupTokenOf, signIn } from '../support/test-admins';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';


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
    admins.alice = await enrolAdmin(kh, 'alice', setupTokenOf(kh));
    admins.bob = await inviteAdmin(kh, admins.alice, 'bob', 'admin');
    admins.carol = await inviteAdmin(kh, admins.alice, 'carol', 'admin');
    admins.olga = await inviteAdmin(kh, admins.alice, 'olga', 'operator');
  });
  after(() => kh.stop());

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
    await kh.dataSource.query(`UPDATE keyhold_pending_operations SET status = 'executing' WHERE id = $1`, [id]);
    const again = await approve(admins.bob, id);
    assert.equal(again.answer.status, 409);
    assert.match(again.answer.body.error.message, /executing/);
    assert.equal((await kh.client().getKey('interrupted')).state, 'enabled');
  });
});
