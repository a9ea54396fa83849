import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SoftwareAuthenticator } from '../support/software-authenticator';
import { type StepUpAction, type TestAdmin, enrolAdmin, inviteAdmin, setupTokenOf, signIn, stepUp, stepUpRequest } from '../support/test-admins';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

const HEADER = 'keyhold-audit-sequence';
type Answer = { status: number; text: string; headers: Record<string, unknown>; body: { error?: { code: string; message: string } } };

/**
 * A stolen session cookie (and its CSRF token) must not become an account takeover: adding a passkey, removing
 * one's own and replacing the recovery codes each need a step-up, a fresh user-verified assertion by one of the
 * admin's own passkeys over a single-use challenge made for that very action.
 */
describe('admin plane: step-up for adding and removing passkeys and new recovery codes', () => {
  let kh: TestKeyhold;
  let alice: TestAdmin;
  let bob: TestAdmin;

  const passkeysOf = async (admin: TestAdmin) =>
    (await kh.dataSource.query('SELECT id, credential_id FROM keyhold_passkeys WHERE admin_id = $1 AND removed_at IS NULL ORDER BY id', [admin.id])) as Array<{ id: string; credential_id: string }>;
  /** One of alice's passkeys that her own authenticator (which signs her step-ups) does not hold. */
  const removable = async () => (await passkeysOf(alice)).find((passkey) => !alice.authenticator.credentialIds.includes(passkey.credential_id));
  const codeHashesOf = async (admin: TestAdmin) =>
    ((await kh.dataSource.query('SELECT code_hash FROM keyhold_recovery_codes WHERE admin_id = $1 ORDER BY code_hash', [admin.id])) as Array<{ code_hash: string }>).map((row) => row.code_hash);

  /** The step-up options request for `action` by `admin` (a removal names one of their passkeys: alice's removable one). */
  const requestFor = async (action: StepUpAction, admin: TestAdmin = alice) =>
    stepUpRequest(action, action !== 'remove-passkey' ? undefined : admin === alice ? (await removable())?.id : (await passkeysOf(admin))[0].id);
  const stepUpOf = async (admin: TestAdmin, action: StepUpAction) =>
    stepUp(kh, admin, action, admin.authenticator, action === 'remove-passkey' ? ((await requestFor(action, admin)) as { passkeyId: string }).passkeyId : undefined);

  /** Each action as alice's session sends it, with `body`; the answer. */
  const act = async (action: StepUpAction, body: object | undefined): Promise<Answer> => {
    const http = kh.adminHttp(alice.session);
    const request =
      action === 'add-passkey'
        ? http.post('/api/v1/me/passkeys/options')
        : action === 'remove-passkey'
          ? http.delete(`/api/v1/me/passkeys/${(await removable())?.id}`)
          : http.post('/api/v1/me/recovery-codes');
    return (body === undefined ? request : request.send(body)) as unknown as Promise<Answer>;
  };

  /** A 401 that changed nothing, recorded as a refusal of the action. */
  const assertRefused = async (answer: Answer, action: StepUpAction, message: RegExp): Promise<void> => {
    assert.equal(answer.status, 401, answer.text);
    assert.equal(answer.body.error?.code, 'UNAUTHENTICATED');
    assert.match(answer.body.error?.message ?? '', message);
    const [record] = await kh.dataSource.query('SELECT operation, outcome, error_code, actor FROM keyhold_audit_records WHERE sequence = $1', [Number(answer.headers[HEADER])]);
    const operation = { 'add-passkey': 'passkeys.add-options', 'remove-passkey': 'passkeys.remove', 'recovery-codes': 'admin.recovery-codes' }[action];
    assert.deepEqual([record.operation, record.outcome, record.error_code, record.actor], [operation, 'refused', 'UNAUTHENTICATED', `admin:${alice.id}`]);
  };

  before(async () => {
    kh = await startTestKeyhold({ admin: true });
    alice = await enrolAdmin(kh, 'alice', setupTokenOf(kh));
    bob = await inviteAdmin(kh, alice, 'bob', 'operator');
    // Alice has two passkeys (the second in another authenticator), so one of them may be removed.
    const spare = await kh.adminHttp(alice.session).post('/api/v1/me/passkeys/options').send({ stepUp: await stepUp(kh, alice, 'add-passkey') }).expect(200);
    const response = await new SoftwareAuthenticator({ origin: kh.adminOrigin, rpId: 'localhost' }).createCredential(spare.body);
    await kh.adminHttp(alice.session).post('/api/v1/me/passkeys').send({ response, name: 'spare' }).expect(201);
  });
  after(() => kh.stop());

  it('gives step-up options for one action: a challenge for the admin’s own passkeys, with user verification', async () => {
    const options = await kh.adminHttp(alice.session).post('/api/v1/me/step-up/options').send({ action: 'recovery-codes' }).expect(200);
    assert.equal(options.body.userVerification, 'required');
    const mine = (await kh.dataSource.query('SELECT credential_id FROM keyhold_passkeys WHERE admin_id = $1 AND removed_at IS NULL', [alice.id])).map((row: { credential_id: string }) => row.credential_id);
    assert.deepEqual(options.body.allowCredentials.map((credential: { id: string }) => credential.id).sort(), mine.sort());
    const [challenge] = await kh.dataSource.query('SELECT purpose, data FROM keyhold_webauthn_challenges WHERE challenge = $1', [options.body.challenge]);
    assert.deepEqual([challenge.purpose, challenge.data], ['step-up', { adminId: alice.id, action: 'recovery-codes' }]);
    for (const body of [{}, { action: 'sign-in' }, { action: 'add-passkey', extra: 1 }]) {
      assert.equal((await kh.adminHttp(alice.session).post('/api/v1/me/step-up/options').send(body)).status, 400, JSON.stringify(body));
    }
    assert.equal((await kh.adminHttp().post('/api/v1/me/step-up/options').send({ action: 'add-passkey' })).status, 401, 'no session, no options');
  });

  for (const action of ['add-passkey', 'remove-passkey', 'recovery-codes'] as const) {
    describe(action, () => {
      let passkeys: Array<{ id: string; credential_id: string }>;
      let codes: string[];
      before(async () => {
        passkeys = await passkeysOf(alice);
        codes = await codeHashesOf(alice);
      });
      const unchanged = async () => {
        assert.deepEqual(await passkeysOf(alice), passkeys, 'no passkey added or removed');
        assert.deepEqual(await codeHashesOf(alice), codes, 'the recovery codes are the same');
      };

      it('is refused with the session alone (no step-up, or no body at all)', async () => {
        await assertRefused(await act(action, undefined), action, /needs a fresh passkey confirmation/);
        await assertRefused(await act(action, {}), action, /needs a fresh passkey confirmation/);
        await unchanged();
      });

      it('is refused with a step-up made for another action, which is used up by the attempt', async () => {
        const other = action === 'recovery-codes' ? 'add-passkey' : 'recovery-codes';
        const assertion = await stepUpOf(alice, other);
        await assertRefused(await act(action, { stepUp: assertion }), action, new RegExp(`made for ${other}, not ${action}`));
        await unchanged();
        // Burnt: it no longer serves its own action either.
        await assertRefused(await act(other, { stepUp: assertion }), other, /no current challenge/);
        await unchanged();
      });

      it("is refused with a step-up signed by another admin's passkey, or made for another admin", async () => {
        // Alice's challenge, signed by bob's passkey.
        const options = await kh.adminHttp(alice.session).post('/api/v1/me/step-up/options').send(await requestFor(action)).expect(200);
        const signedByBob = await bob.authenticator.getAssertion(options.body, { credentialId: bob.authenticator.credentialIds[0] });
        await assertRefused(await act(action, { stepUp: signedByBob }), action, /your own passkeys/);
        // Bob's own step-up for the action, carried into alice's session.
        await assertRefused(await act(action, { stepUp: await stepUpOf(bob, action) }), action, /no current challenge of yours/);
        await unchanged();
      });

      it('is refused without user verification, with a bad signature, or once the step-up expired', async () => {
        const options = async () => (await kh.adminHttp(alice.session).post('/api/v1/me/step-up/options').send(await requestFor(action)).expect(200)).body;
        await assertRefused(await act(action, { stepUp: await alice.authenticator.getAssertion(await options(), { userVerified: false }) }), action, /passkey refused/);
        await assertRefused(await act(action, { stepUp: await alice.authenticator.getAssertion(await options(), { corruptSignature: true }) }), action, /passkey refused/);
        const late = await options();
        kh.clock.advanceMs(5 * 60_000 + 1000);
        await assertRefused(await act(action, { stepUp: await alice.authenticator.getAssertion(late) }), action, /no current challenge/);
        await unchanged();
      });

      it('is done with a proper step-up, once: the same step-up replayed is refused', async () => {
        const assertion = await stepUpOf(alice, action);
        const target = await removable();
        const done = await act(action, { stepUp: assertion });
        assert.equal(done.status, 200, done.text);
        if (action === 'add-passkey') {
          // One step-up, one registration: the options' challenge is used up by the passkey it registers.
          const added = await kh.adminHttp(alice.session).post('/api/v1/me/passkeys').send({ response: await new SoftwareAuthenticator({ origin: kh.adminOrigin, rpId: 'localhost' }).createCredential(done.body as never), name: 'third' });
          assert.equal(added.status, 201, added.text);
          assert.equal((await passkeysOf(alice)).length, passkeys.length + 1);
        } else if (action === 'remove-passkey') {
          assert.deepEqual(await passkeysOf(alice), passkeys.filter((passkey) => passkey.id !== target?.id));
        } else {
          assert.equal((done.body as unknown as { recoveryCodes: string[] }).recoveryCodes.length, 10);
          assert.notDeepEqual(await codeHashesOf(alice), codes);
        }
        passkeys = await passkeysOf(alice);
        codes = await codeHashesOf(alice);
        const replayed = await act(action, { stepUp: assertion });
        await assertRefused(replayed, action, /no current challenge/);
        await unchanged();
        // The session stays signed in through every refusal.
        await kh.adminHttp(alice.session).get('/api/v1/session').expect(200);
      });
    });
  }

  it('binds a removal’s step-up to the passkey it names: it removes no other, and names only one’s own', async () => {
    const [first, second] = await passkeysOf(alice);
    const forFirst = await stepUp(kh, alice, 'remove-passkey', alice.authenticator, first.id);
    const other = await kh.adminHttp(alice.session).delete(`/api/v1/me/passkeys/${second.id}`).send({ stepUp: forFirst });
    await assertRefused(other as unknown as Answer, 'remove-passkey', /made to remove another passkey/);
    assert.ok((await passkeysOf(alice)).some((passkey) => passkey.id === second.id), 'the other passkey stays');
    const bobs = (await passkeysOf(bob))[0].id;
    const foreign = await kh.adminHttp(alice.session).post('/api/v1/me/step-up/options').send({ action: 'remove-passkey', passkeyId: bobs });
    assert.equal(foreign.status, 404, foreign.text);
    assert.equal((await kh.adminHttp(alice.session).post('/api/v1/me/step-up/options').send({ action: 'remove-passkey' })).status, 400, 'a removal names its passkey');
  });

  it('locks a stolen session out of the takeover: the victim still signs in with their passkey', async () => {
    const stolen = await signIn(kh, alice.authenticator);
    const thief = new SoftwareAuthenticator({ origin: kh.adminOrigin, rpId: 'localhost' });
    const http = kh.adminHttp(stolen);
    // Step-up options answered by the thief's own authenticator: it holds no passkey of alice.
    const options = await http.post('/api/v1/me/step-up/options').send({ action: 'add-passkey' }).expect(200);
    await assert.rejects(thief.getAssertion(options.body), /NotAllowedError/);
    assert.equal((await http.post('/api/v1/me/passkeys/options').send({})).status, 401);
    assert.equal((await http.post('/api/v1/me/recovery-codes').send({})).status, 401);
    for (const passkey of await passkeysOf(alice)) assert.equal((await http.delete(`/api/v1/me/passkeys/${passkey.id}`).send({})).status, 401);
    assert.equal((await signIn(kh, alice.authenticator)).cookie.length > 0, true);
  });
});
