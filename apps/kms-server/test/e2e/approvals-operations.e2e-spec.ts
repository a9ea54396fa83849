import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SoftwareAuthenticator } from '../support/software-authenticator';
import { type TestAdmin, enrolAdmin, inviteAdmin, setupTokenOf, signIn, stepUp } from '../support/test-admins';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';


describe('sensitive operations with the default quorum of one: each needs a fresh passkey assertion', () => {
  let kh: TestKeyhold;
  const admins: Record<string, TestAdmin> = {};


  async function run(admin: TestAdmin, operation: Record<string, unknown>) {
    const requested = await kh.adminHttp(admin.session).post('/api/v1/operations').send(operation);
    assert.equal(requested.status, 201, requested.text);
    const response = await admin.authenticator.getAssertion(requested.body.assertionOptions);
    const approved = await kh.adminHttp(admin.session).post(`/api/v1/operations/${requested.body.operation.id}/approvals`).send({ response });
    assert.equal(approved.status, 200, approved.text);
    return approved.body;
  }

  before(async () => {
    kh = await startTestKeyhold({ admin: true });
    admins.alice = await enrolAdmin(kh, 'alice', setupTokenOf(kh));
    admins.bob = await inviteAdmin(kh, admins.alice, 'bob', 'admin');
    admins.carol = await inviteAdmin(kh, admins.alice, 'carol', 'admin');
  });
  after(() => kh.stop());

  it('does nothing without the approval: a request alone changes nothing', async () => {
    const requested = await kh.adminHttp(admins.alice.session).post('/api/v1/operations').send({ kind: 'remove-admin', adminId: admins.bob.id }).expect(201);
    assert.equal(requested.body.operation.status, 'pending');
    assert.equal((await kh.adminHttp(admins.bob.session).get('/api/v1/session')).status, 200);
  });

  it("removes another admin's passkey, but never the last one", async () => {
    const second = new SoftwareAuthenticator({ origin: kh.adminOrigin, rpId: 'localhost' });
    const options = await kh.adminHttp(admins.carol.session).post('/api/v1/me/passkeys/options').send({ stepUp: await stepUp(kh, admins.carol, 'add-passkey') }).expect(200);
    const added = await kh.adminHttp(admins.carol.session).post('/api/v1/me/passkeys').send({ response: await second.createCredential(options.body), name: 'spare' }).expect(201);
    const done = await run(admins.alice, { kind: 'remove-passkey', adminId: admins.carol.id, passkeyId: added.body.id });
    assert.equal(done.status, 'executed');
    // Carol's sessions end with the passkey (it may have opened them); her other passkey signs in.
    assert.equal((await kh.adminHttp(admins.carol.session).get('/api/v1/session')).status, 401);
    admins.carol.session = await signIn(kh, admins.carol.authenticator);
    const left = await kh.adminHttp(admins.carol.session).get('/api/v1/me/passkeys').expect(200);
    assert.equal(left.body.passkeys.length, 1);
    const last = await run(admins.alice, { kind: 'remove-passkey', adminId: admins.carol.id, passkeyId: left.body.passkeys[0].id });
    assert.equal(last.status, 'failed');
    assert.equal((await kh.adminHttp(admins.carol.session).get('/api/v1/me/passkeys')).body.passkeys.length, 1);
  });

  it('removes a passkey that signed approvals: it never signs in again, the approvals keep their record, its sessions end', async () => {
    const spare = new SoftwareAuthenticator({ origin: kh.adminOrigin, rpId: 'localhost' });
    const options = await kh.adminHttp(admins.alice.session).post('/api/v1/me/passkeys/options').send({ stepUp: await stepUp(kh, admins.alice, 'add-passkey') }).expect(200);
    await kh.adminHttp(admins.alice.session).post('/api/v1/me/passkeys').send({ response: await spare.createCredential(options.body), name: 'spare' }).expect(201);
    const listed = await kh.adminHttp(admins.alice.session).get('/api/v1/me/passkeys').expect(200);
    const signer = listed.body.passkeys.find((passkey: { name: string }) => passkey.name !== 'spare');
    const [{ count: signed }] = await kh.dataSource.query(`SELECT count(*)::int AS count FROM keyhold_approvals WHERE passkey_id = $1`, [signer.id]);
    assert.ok(signed > 0, 'the passkey signed approvals');

    // Lost: another admin removes it through an approval; every session of alice ends with it.
    const approved = await run(admins.carol, { kind: 'remove-passkey', adminId: admins.alice.id, passkeyId: signer.id });
    assert.equal(approved.status, 'executed', JSON.stringify(approved));
    assert.equal((await kh.adminHttp(admins.alice.session).get('/api/v1/session')).status, 401);
    const [{ count: kept }] = await kh.dataSource.query(`SELECT count(*)::int AS count FROM keyhold_approvals WHERE passkey_id = $1`, [signer.id]);
    assert.equal(kept, signed, 'the approvals it signed stay on record');

    // It no longer signs in; the spare does.
    const refused = await kh.adminHttp().post('/api/v1/session/options').send({}).expect(200);
    const assertion = await admins.alice.authenticator.getAssertion(refused.body);
    assert.equal((await kh.adminHttp().post('/api/v1/session').send({ response: assertion })).status, 401);
    admins.alice = { ...admins.alice, authenticator: spare, session: await signIn(kh, spare) };
    const left = await kh.adminHttp(admins.alice.session).get('/api/v1/me/passkeys').expect(200);
    assert.deepEqual(left.body.passkeys.map((passkey: { name: string }) => passkey.name), ['spare']);
  });

  it('removes an admin: their sessions end at once', async () => {
    const done = await run(admins.alice, { kind: 'remove-admin', adminId: admins.bob.id });
    assert.equal(done.status, 'executed');
    assert.equal((await kh.adminHttp(admins.bob.session).get('/api/v1/session')).status, 401);
    const listed = await kh.adminHttp(admins.alice.session).get('/api/v1/admins').expect(200);
    assert.ok(!listed.body.admins.some((admin: { id: string }) => admin.id === admins.bob.id));
  });

  it('shortens a destruction window, and the scheduler honours the new date', async () => {
    await kh.http().post('/v1/keys').send({ name: 'hurry', algorithm: 'aes-256-gcm' }).expect(201);
    await kh.adminHttp(admins.alice.session).post('/api/v1/keys/hurry/schedule-destruction').send({ pendingDays: 30 }).expect(200);
    const destroyAt = new Date(kh.clock.now().getTime() + 86_400_000).toISOString();
    const longer = await kh.adminHttp(admins.alice.session).post('/api/v1/operations').send({
      kind: 'shorten-destruction-window',
      key: 'hurry',
      destroyAt: new Date(kh.clock.now().getTime() + 40 * 86_400_000).toISOString(),
    }).expect(201);
    const response = await admins.alice.authenticator.getAssertion(longer.body.assertionOptions);
    const refused = await kh.adminHttp(admins.alice.session).post(`/api/v1/operations/${longer.body.operation.id}/approvals`).send({ response }).expect(200);
    assert.equal(refused.body.status, 'failed', 'a later date is not a shortening');
    assert.equal(refused.body.result.error.code, 'VALIDATION_FAILED');
    const done = await run(admins.alice, { kind: 'shorten-destruction-window', key: 'hurry', destroyAt });
    assert.equal(done.status, 'executed');
    assert.equal((await kh.client().getKey('hurry')).destroyAt, destroyAt);
    kh.clock.advanceDays(1);
    await kh.server.scheduler.runOnce();
    assert.equal((await kh.client().getKey('hurry')).state, 'destroyed');
  });
});
