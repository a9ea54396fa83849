import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestAdmin, enrolAdmin, setupTokenOf, signIn } from '../support/test-admins';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

const DAY_MS = 86_400_000;
const dayOf = (at: Date) => at.toISOString().slice(0, 10);

describe('usage history: encryptions per version per UTC day, for the console chart', () => {
  let kh: TestKeyhold;
  let alice: TestAdmin;
  before(async () => {
    kh = await startTestKeyhold({ admin: true });
    alice = await enrolAdmin(kh, 'alice', setupTokenOf(kh));
  });
  after(() => kh.stop());

  it('counts each day under the version that encrypted, decryptions aside, and validates the range', async () => {
    await kh.http().post('/v1/keys').send({ name: 'charted', algorithm: 'aes-256-gcm' }).expect(201);
    const encrypt = () => kh.http().post('/v1/keys/charted/encrypt').send({ plaintext: 'eA==' }).expect(200);
    for (let i = 0; i < 3; i++) await encrypt();
    const firstDay = dayOf(kh.clock.now());
    await kh.server.usage.flush();

    kh.clock.advanceMs(DAY_MS);
    const session = await signIn(kh, alice.authenticator); // the old session expired with the day
    const http = kh.adminHttp(session);
    await http.post('/api/v1/keys/charted/rotate').expect(200);
    for (let i = 0; i < 2; i++) await encrypt();
    const { ciphertext } = (await encrypt()).body;
    await kh.http().post('/v1/keys/charted/decrypt').send({ ciphertext }).expect(200);

    const history = await http.get('/api/v1/keys/charted/usage?days=7').expect(200);
    const today = dayOf(kh.clock.now());
    assert.deepEqual(history.body.days, [
      { day: firstDay, version: 1, encryptions: 3 },
      { day: today, version: 2, encryptions: 3 },
    ]);
    assert.equal(history.body.keyName, 'charted');
    assert.equal(history.body.since, dayOf(new Date(kh.clock.now().getTime() - 6 * DAY_MS)));
    const todayOnly = await http.get('/api/v1/keys/charted/usage?days=1').expect(200);
    assert.deepEqual(todayOnly.body.days.map((d: { day: string }) => d.day), [today]);
    const defaults = await http.get('/api/v1/keys/charted/usage').expect(200);
    assert.equal(defaults.body.since, dayOf(new Date(kh.clock.now().getTime() - 29 * DAY_MS)));

    for (const bad of ['days=0', 'days=367', 'days=x', 'colour=blue']) {
      const refused = await http.get(`/api/v1/keys/charted/usage?${bad}`);
      assert.equal(refused.status, 400, bad);
      assert.equal(refused.body.error.code, 'VALIDATION_FAILED');
    }
    assert.equal((await http.get('/api/v1/keys/nothing-here/usage')).status, 404);
  });
});
