import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '@keyhold/key-lifecycle';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail(`never happened: ${what}`);
}

describe('two instances on one database', () => {
  let a: TestKeyhold;
  let b: TestKeyhold;
  const clock = new ManualClock(new Date('2026-01-01T00:00:00Z'));
  before(async () => {
    a = await startTestKeyhold({ clock });
    b = await startTestKeyhold({ clock, databaseUrl: a.database.url, masterKey: a.masterKey });
  });
  after(async () => {
    await b.stop();
    await a.stop();
  });

  it('sees a change made by the other instance through LISTEN/NOTIFY, without waiting for the cache TTL', async () => {
    await a.http().post('/v1/keys').send({ name: 'shared', algorithm: 'aes-256-gcm' }).expect(201);
    const warm = await b.http().post('/v1/keys/shared/encrypt').send({ plaintext: 'eA==' }).expect(200);
    assert.equal(warm.body.keyVersion, 1);

    await a.http().post('/v1/keys/shared/disable').expect(200);
    await eventually(async () => (await b.http().post('/v1/keys/shared/encrypt').send({ plaintext: 'eA==' })).status === 409, 'B refuses a key A disabled');

    await a.http().post('/v1/keys/shared/enable').expect(200);
    await a.http().post('/v1/keys/shared/rotate').expect(200);
    await eventually(
      async () => (await b.http().post('/v1/keys/shared/encrypt').send({ plaintext: 'eA==' })).body.keyVersion === 2,
      'B encrypts under the version A rotated to',
    );
    const fromB = await b.http().post('/v1/keys/shared/encrypt').send({ plaintext: 'eA==' }).expect(200);
    const byA = await a.http().post('/v1/decrypt').send({ ciphertext: fromB.body.ciphertext }).expect(200);
    assert.equal(byA.body.plaintext, 'eA==');
  });

  it('rotates a due key exactly once when both schedulers run at the same time', async () => {
    await a.http().post('/v1/keys').send({ name: 'due', algorithm: 'aes-256-gcm', rotationPeriodDays: 1 }).expect(201);
    clock.advanceDays(1);
    const [passA, passB] = await Promise.all([a.server.scheduler.runOnce(), b.server.scheduler.runOnce()]);
    const rotations = [...passA.rotated, ...passB.rotated].filter((name) => name === 'due');
    assert.equal(rotations.length, 1);
    const key = await a.client().getKey('due');
    assert.equal(key.primaryVersion, 2);
    assert.equal(key.versions.length, 2);
  });
});
