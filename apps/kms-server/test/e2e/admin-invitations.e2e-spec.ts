import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openInvitationListViewSchema } from '@keyhold/contracts';
import { type TestAdmin, enrolAdmin, inviteAdmin, setupTokenOf } from '../support/test-admins';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

const HEADER = 'keyhold-audit-sequence';

/** Open invitations: listed without secret material, revocable by admins, gone once used, revoked or expired. */
describe('admin plane: open invitations, listed and revoked', () => {
  let kh: TestKeyhold;
  let alice: TestAdmin;
  let olga: TestAdmin;
  let audrey: TestAdmin;

  const invite = async (role: 'admin' | 'operator' | 'auditor', name?: string): Promise<{ token: string; id: string }> => {
    kh.clock.advanceMs(1_000); // listed oldest first
    const answer = await kh.adminHttp(alice.session).post('/api/v1/admins/invitations').send(name ? { role, name } : { role }).expect(201);
    return { token: answer.body.token, id: String(answer.body.token).split('.')[0] };
  };
  const listed = async () => {
    const answer = await kh.adminHttp(alice.session).get('/api/v1/admins/invitations').expect(200);
    return { text: answer.text, invitations: openInvitationListViewSchema.parse(answer.body).invitations };
  };

  before(async () => {
    kh = await startTestKeyhold({ admin: true });
    alice = await enrolAdmin(kh, 'alice', setupTokenOf(kh));
    olga = await inviteAdmin(kh, alice, 'olga', 'operator');
    audrey = await inviteAdmin(kh, alice, 'audrey', 'auditor');
  });
  after(() => kh.stop());

  it('lists unused, unexpired invitations with what they grant, never the token, its secret or its hash', async () => {
    const before = kh.clock.now().getTime();
    const named = await invite('operator', 'bob');
    const unnamed = await invite('auditor');
    const { text, invitations } = await listed();
    assert.deepEqual(
      invitations.map((invitation) => [invitation.id, invitation.role, invitation.name, invitation.createdBy]),
      [
        [named.id, 'operator', 'bob', alice.id],
        [unnamed.id, 'auditor', null, alice.id],
      ],
      'the used invitations of olga and audrey are not listed',
    );
    for (const invitation of invitations) {
      assert.ok(Date.parse(invitation.createdAt) > before);
      assert.equal(Date.parse(invitation.expiresAt) - Date.parse(invitation.createdAt), 72 * 3_600_000);
    }
    const [hash] = (await kh.dataSource.query('SELECT secret_hash FROM keyhold_enrolment_tokens WHERE id = $1', [named.id])) as Array<{ secret_hash: string }>;
    for (const { token } of [named, unnamed]) {
      assert.ok(!text.includes(token.split('.')[1]), 'no secret part of a token in the answer');
    }
    assert.ok(!text.includes(hash.secret_hash) && !text.includes('$argon2'), 'no hash in the answer');

    // Operators and auditors see no links in flight.
    await kh.adminHttp(olga.session).get('/api/v1/admins/invitations').expect(403);
    await kh.adminHttp(audrey.session).get('/api/v1/admins/invitations').expect(403);

    // A used invitation leaves the list.
    await enrolAdmin(kh, 'bob', named.token);
    assert.deepEqual((await listed()).invitations.map((invitation) => invitation.id), [unnamed.id]);
    await kh.adminHttp(alice.session).delete(`/api/v1/admins/invitations/${unnamed.id}`).expect(204);
  });

  it('revokes an unused invitation with its audit record: it leaves the list and its link enrols nobody', async () => {
    const wrong = await invite('operator', 'mallory');
    const kept = await invite('auditor', 'carol');
    // Operators and auditors cannot revoke one.
    for (const admin of [olga, audrey]) {
      const refused = await kh.adminHttp(admin.session).delete(`/api/v1/admins/invitations/${wrong.id}`);
      assert.equal(refused.status, 403, refused.text);
    }
    const revoked = await kh.adminHttp(alice.session).delete(`/api/v1/admins/invitations/${wrong.id}`).expect(204);
    const [record] = await kh.dataSource.query('SELECT operation, outcome, actor, plane FROM keyhold_audit_records WHERE sequence = $1', [Number(revoked.headers[HEADER])]);
    assert.deepEqual([record.operation, record.outcome, record.actor, record.plane], ['admins.revoke-invitation', 'success', `admin:${alice.id}`, 'admin']);
    const [row] = await kh.dataSource.query('SELECT expires_at, used_at FROM keyhold_enrolment_tokens WHERE id = $1', [wrong.id]);
    assert.ok(row.expires_at.getTime() === kh.clock.now().getTime() && row.used_at === null, 'expired now, not used');

    assert.deepEqual((await listed()).invitations.map((invitation) => invitation.id), [kept.id]);
    const refused = await kh.adminHttp().post('/api/v1/enrolment/options').send({ token: wrong.token, name: 'mallory' });
    assert.equal(refused.status, 401, refused.text);

    // Revoking it again, or a used or unknown one: 404 with a clear message.
    const again = await kh.adminHttp(alice.session).delete(`/api/v1/admins/invitations/${wrong.id}`);
    assert.equal(again.status, 404, again.text);
    assert.match(again.body.error.message, /no such open invitation/);
    const carol = await enrolAdmin(kh, 'carol', kept.token);
    assert.ok(carol.id);
    await kh.adminHttp(alice.session).delete(`/api/v1/admins/invitations/${kept.id}`).expect(404);
    await kh.adminHttp(alice.session).delete('/api/v1/admins/invitations/AAAAAAAAAAAAAAAA').expect(404);
    assert.deepEqual((await listed()).invitations, []);
  });

  it('refuses a malformed id at the edge', async () => {
    const answer = await kh.adminHttp(alice.session).delete('/api/v1/admins/invitations/not-an-id!');
    assert.equal(answer.status, 400, answer.text);
    assert.equal(answer.body.error.code, 'VALIDATION_FAILED');
    assert.match(answer.body.error.message, /^id: not an invitation id/);
  });
});
