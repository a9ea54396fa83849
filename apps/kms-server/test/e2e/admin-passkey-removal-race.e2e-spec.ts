import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AdminRepository } from '../../src/admin/admin.repository';
import { SoftwareAuthenticator } from '../support/software-authenticator';
import { type TestAdmin, enrolAdmin, sessionCookieOf, setupTokenOf, stepUp } from '../support/test-admins';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

const HEADER = 'keyhold-audit-sequence';
type Answer = { status: number; text: string; headers: Record<string, unknown>; body: { csrfToken?: string; status?: string; error?: { code: string } } };

/**
 * Holds the answer of the next call of `object[method]` (made by the server) until `release()`: the call itself has
 * run. `reached` settles once it has.
 */
function holdNextAnswer<T extends object>(object: T, method: keyof T & string): { reached: Promise<void>; release: () => void } {
  const original = object[method] as (...args: unknown[]) => Promise<unknown>;
  let reached!: () => void;
  let release!: () => void;
  const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  Object.assign(object, {
    [method]: async (...args: unknown[]) => {
      Object.assign(object, { [method]: original });
      const answer = await original.apply(object, args);
      reached();
      await released;
      return answer;
    },
  });
  return { reached: reachedPromise, release };
}

/**
 * "A lost or stolen passkey: every session of its administrator ends with it." A sign-in or an approval by a
 * passkey that is removed after its signature was checked but before what it signed is written must not outlive
 * the removal. The server is held between the two (after the passkey's counter moved) while the removal commits.
 */
describe('admin plane: a passkey removed while it signs in or approves', () => {
  let kh: TestKeyhold;
  let alice: TestAdmin;
  let repository: AdminRepository;

  /** Gives alice another passkey, in an authenticator of its own; its id. */
  async function addSpare(): Promise<{ authenticator: SoftwareAuthenticator; passkeyId: string }> {
    const authenticator = new SoftwareAuthenticator({ origin: kh.adminOrigin, rpId: 'localhost' });
    const options = await kh.adminHttp(alice.session).post('/api/v1/me/passkeys/options').send({ stepUp: await stepUp(kh, alice, 'add-passkey') }).expect(200);
    await kh.adminHttp(alice.session).post('/api/v1/me/passkeys').send({ response: await authenticator.createCredential(options.body), name: 'spare' }).expect(201);
    const [row] = await kh.dataSource.query('SELECT id FROM keyhold_passkeys WHERE credential_id = $1', [authenticator.credentialIds[0]]);
    return { authenticator, passkeyId: row.id };
  }

  /** Alice removes `passkeyId` from her own session (confirmed with her first passkey). */
  async function remove(passkeyId: string): Promise<void> {
    const confirmation = await stepUp(kh, alice, 'remove-passkey', alice.authenticator, passkeyId);
    await kh.adminHttp(alice.session).delete(`/api/v1/me/passkeys/${passkeyId}`).send({ stepUp: confirmation }).expect(200);
  }

  /** Sends `request`, holds the server once its call of `method` has answered, removes `passkeyId` meanwhile. */
  async function withRemovalDuring(method: keyof AdminRepository & string, passkeyId: string, request: () => PromiseLike<unknown>): Promise<Answer> {
    const hold = holdNextAnswer(repository, method);
    const answering = Promise.resolve(request()).then((answer) => answer as Answer);
    await hold.reached;
    try {
      await remove(passkeyId);
    } finally {
      hold.release();
    }
    return answering;
  }

  async function auditRecordOf(answer: Answer) {
    const [record] = await kh.dataSource.query('SELECT operation, outcome, error_code FROM keyhold_audit_records WHERE sequence = $1', [Number(answer.headers[HEADER])]);
    return record;
  }

  before(async () => {
    kh = await startTestKeyhold({ admin: true });
    alice = await enrolAdmin(kh, 'alice', setupTokenOf(kh));
    repository = kh.server.admin?.app.get(AdminRepository) as AdminRepository;
  });
  after(() => kh.stop());

  it('opens no session that outlives the removal of the passkey it signed in with', async () => {
    const spare = await addSpare();
    const options = await kh.adminHttp().post('/api/v1/session/options').send({}).expect(200);
    const response = await spare.authenticator.getAssertion(options.body);
    const answer = await withRemovalDuring('recordPasskeyUse', spare.passkeyId, () => kh.adminHttp().post('/api/v1/session').send({ response }));

    if (answer.status === 200) {
      const session = await kh.adminHttp({ cookie: sessionCookieOf(answer), csrfToken: answer.body.csrfToken }).get('/api/v1/session');
      assert.equal(session.status, 401, 'a session opened with a removed passkey was not ended with it');
    }
    assert.equal(answer.status, 401, answer.text);
    assert.equal(answer.body.error?.code, 'UNAUTHENTICATED');
    assert.deepEqual(await auditRecordOf(answer), { operation: 'admin.sign-in', outcome: 'refused', error_code: 'UNAUTHENTICATED' });
    const [{ count }] = await kh.dataSource.query('SELECT count(*)::int AS count FROM keyhold_admin_sessions WHERE admin_id = $1 AND revoked_at IS NULL', [alice.id]);
    assert.equal(count, 1, 'only the session alice removed the passkey from is left');
  });

  it('refuses a sign-in whose passkey is removed after it was read, and leaves the removed passkey untouched', async () => {
    const spare = await addSpare();
    const options = await kh.adminHttp().post('/api/v1/session/options').send({}).expect(200);
    const response = await spare.authenticator.getAssertion(options.body);
    const usageOf = async (id: string) => (await kh.dataSource.query('SELECT counter, last_used_at FROM keyhold_passkeys WHERE id = $1', [id]))[0];
    const unused = await usageOf(spare.passkeyId);
    const answer = await withRemovalDuring('findPasskeyByCredentialId', spare.passkeyId, () => kh.adminHttp().post('/api/v1/session').send({ response }));

    assert.equal(answer.status, 401, answer.text);
    assert.deepEqual(await auditRecordOf(answer), { operation: 'admin.sign-in', outcome: 'refused', error_code: 'UNAUTHENTICATED' });
    assert.deepEqual(await usageOf(spare.passkeyId), unused, 'a removed passkey is never used again');
  });

  it('neither records nor counts an approval by a passkey removed before it is recorded', async () => {
    const spare = await addSpare();
    const requested = await kh.adminHttp(alice.session).post('/api/v1/operations').send({ kind: 'set-quorum', approvals: 1 }).expect(201);
    const id: string = requested.body.operation.id;
    const response = await spare.authenticator.getAssertion(requested.body.assertionOptions);
    const answer = await withRemovalDuring('recordPasskeyUse', spare.passkeyId, () => kh.adminHttp(alice.session).post(`/api/v1/operations/${id}/approvals`).send({ response }));

    assert.equal(answer.status, 401, answer.text);
    assert.equal(answer.body.error?.code, 'UNAUTHENTICATED');
    assert.deepEqual(await auditRecordOf(answer), { operation: 'operations.approve', outcome: 'refused', error_code: 'UNAUTHENTICATED' });
    assert.deepEqual(await kh.dataSource.query('SELECT admin_id FROM keyhold_approvals WHERE operation_id = $1', [id]), []);
    const [operation] = await kh.dataSource.query('SELECT status FROM keyhold_pending_operations WHERE id = $1', [id]);
    assert.equal(operation.status, 'pending');

    // Her remaining passkey still approves it.
    const fetched = await kh.adminHttp(alice.session).get(`/api/v1/operations/${id}`).expect(200);
    const approved = await kh.adminHttp(alice.session).post(`/api/v1/operations/${id}/approvals`).send({ response: await alice.authenticator.getAssertion(fetched.body.assertionOptions) });
    assert.equal(approved.status, 200, approved.text);
    assert.equal(approved.body.status, 'executed');
  });
  it('adds no passkey whose registration was confirmed by a passkey removed before it finished', async () => {
    const stolen = await addSpare();
    // Whoever holds the stolen passkey confirms adding one of their own, and gets the registration options...
    const confirmation = await stepUp(kh, alice, 'add-passkey', stolen.authenticator);
    const options = await kh.adminHttp(alice.session).post('/api/v1/me/passkeys/options').send({ stepUp: confirmation }).expect(200);
    // ...alice removes the stolen passkey meanwhile...
    await remove(stolen.passkeyId);
    // ...and the registration it confirmed is refused.
    const intruder = new SoftwareAuthenticator({ origin: kh.adminOrigin, rpId: 'localhost' });
    const registered = await kh.adminHttp(alice.session).post('/api/v1/me/passkeys').send({ response: await intruder.createCredential(options.body), name: 'mine now' });
    assert.equal(registered.status, 401, registered.text);
    assert.equal(registered.body.error.code, 'UNAUTHENTICATED');
    assert.deepEqual(await kh.dataSource.query('SELECT id FROM keyhold_passkeys WHERE credential_id = $1', [intruder.credentialIds[0]]), []);
  });

  // Last: it moves the clock past this Keyhold's session timeouts.
  it('refuses an approval whose operation expired while its assertion was being checked', async () => {
    const requested = await kh.adminHttp(alice.session).post('/api/v1/operations').send({ kind: 'set-quorum', approvals: 1 }).expect(201);
    const id: string = requested.body.operation.id;
    const response = await alice.authenticator.getAssertion(requested.body.assertionOptions);
    const hold = holdNextAnswer(repository, 'recordPasskeyUse');
    const approving = kh.adminHttp(alice.session).post(`/api/v1/operations/${id}/approvals`).send({ response }).then((answer) => answer as unknown as Answer);
    await hold.reached;
    kh.clock.advanceMs(61 * 60_000); // past the operation's hour
    hold.release();
    const answer = await approving;

    assert.equal(answer.status, 409, answer.text);
    assert.equal(answer.body.error?.code, 'INVALID_STATE');
    assert.deepEqual(await kh.dataSource.query('SELECT admin_id FROM keyhold_approvals WHERE operation_id = $1', [id]), []);
  });
});
