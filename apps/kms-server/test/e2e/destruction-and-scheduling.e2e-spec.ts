import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TypeormKeyRepository } from '../../src/persistence/typeorm-key.repository';
import { LifecycleScheduler } from '../../src/scheduler/lifecycle-scheduler';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

async function materialOf(kh: TestKeyhold, name: string): Promise<Array<{ version: number; state: string; material: Buffer | null }>> {
  return kh.dataSource.query(
    `SELECT v.version, v.state, v.wrapped_material AS material
       FROM keyhold_key_versions v JOIN keyhold_keys k ON k.id = v.key_id
      WHERE k.name = $1 ORDER BY v.version`,
    [name],
  );
}

describe('destruction windows and the scheduler (manual clock)', () => {
  let kh: TestKeyhold;
  before(async () => {
    kh = await startTestKeyhold();
  });
  after(() => kh.stop());

  it('refuses pending windows outside 7..30 days', async () => {
    await kh.http().post('/v1/keys').send({ name: 'window', algorithm: 'aes-256-gcm' }).expect(201);
    for (const pendingDays of [6, 31, 0, -1, 7.5]) {
      const response = await kh.http().post('/v1/keys/window/schedule-destruction').send({ pendingDays });
      assert.equal(response.status, 400, `pendingDays ${pendingDays}`);
      assert.equal(response.body.error.code, 'VALIDATION_FAILED');
    }
    const defaulted = await kh.http().post('/v1/keys/window/schedule-destruction').expect(200);
    assert.equal(defaulted.body.state, 'pending_destruction');
    assert.equal(defaulted.body.destroyAt, new Date(kh.clock.now().getTime() + 30 * 86_400_000).toISOString());
  });

  it('schedules, cancels (back to disabled) and re-schedules key destruction', async () => {
    await kh.http().post('/v1/keys').send({ name: 'cancel-me', algorithm: 'aes-256-gcm' }).expect(201);
    const ct = await kh.http().post('/v1/keys/cancel-me/encrypt').send({ plaintext: 'c2VjcmV0' }).expect(200);
    const scheduled = await kh.http().post('/v1/keys/cancel-me/schedule-destruction').send({ pendingDays: 7 }).expect(200);
    assert.equal(scheduled.body.state, 'pending_destruction');
    const duringWindow = await kh.http().post('/v1/keys/cancel-me/decrypt').send({ ciphertext: ct.body.ciphertext });
    assert.equal(duringWindow.status, 409);
    assert.equal(duringWindow.body.error.code, 'INVALID_STATE');
    const again = await kh.http().post('/v1/keys/cancel-me/schedule-destruction').send({ pendingDays: 7 });
    assert.equal(again.status, 409);
    const cancelled = await kh.http().post('/v1/keys/cancel-me/cancel-destruction').expect(200);
    assert.equal(cancelled.body.state, 'disabled');
    assert.equal(cancelled.body.destroyAt, null);
    const notPending = await kh.http().post('/v1/keys/cancel-me/cancel-destruction');
    assert.equal(notPending.status, 409);
    await kh.http().post('/v1/keys/cancel-me/enable').expect(200);
    const back = await kh.http().post('/v1/keys/cancel-me/decrypt').send({ ciphertext: ct.body.ciphertext }).expect(200);
    assert.equal(back.body.plaintext, 'c2VjcmV0');
  });

  it('destroys a key when its window ends: material shredded, tombstone kept, name never reused', async () => {
    await kh.http().post('/v1/keys').send({ name: 'doomed', algorithm: 'aes-256-gcm' }).expect(201);
    await kh.http().post('/v1/keys/doomed/rotate').expect(200);
    const ct = await kh.http().post('/v1/keys/doomed/encrypt').send({ plaintext: 'Ynll' }).expect(200);
    await kh.http().post('/v1/keys/doomed/schedule-destruction').send({ pendingDays: 7 }).expect(200);

    kh.clock.advanceDays(6);
    let pass = await kh.server.scheduler.runOnce();
    assert.ok(pass.ran);
    assert.equal((await kh.client().getKey('doomed')).state, 'pending_destruction', 'not before the window ends');

    kh.clock.advanceDays(1);
    pass = await kh.server.scheduler.runOnce();
    assert.deepEqual(pass.destroyed, [{ key: 'doomed', versions: [1, 2], keyDestroyed: true }]);
    const tombstone = await kh.client().getKey('doomed');
    assert.equal(tombstone.state, 'destroyed');
    assert.deepEqual(
      tombstone.versions.map((v) => [v.version, v.state]),
      [
        [1, 'destroyed'],
        [2, 'destroyed'],
      ],
    );
    assert.ok(tombstone.versions.every((v) => v.destroyedAt !== null));
    const rows = await materialOf(kh, 'doomed');
    assert.ok(rows.every((row) => row.material === null), 'no wrapped material survives');

    const decrypt = await kh.http().post('/v1/keys/doomed/decrypt').send({ ciphertext: ct.body.ciphertext });
    assert.equal(decrypt.status, 422);
    assert.equal(decrypt.body.error.code, 'KEY_VERSION_DESTROYED');
    const reuse = await kh.http().post('/v1/keys').send({ name: 'doomed', algorithm: 'aes-256-gcm' });
    assert.equal(reuse.status, 409);
    assert.equal(reuse.body.error.code, 'KEY_EXISTS');
    const enable = await kh.http().post('/v1/keys/doomed/enable');
    assert.equal(enable.status, 409);
    assert.equal(enable.body.error.code, 'INVALID_STATE');
  });

  it('destroys one version at the end of its window while the others keep working', async () => {
    await kh.http().post('/v1/keys').send({ name: 'vdestroy', algorithm: 'aes-256-gcm' }).expect(201);
    const v1 = await kh.http().post('/v1/keys/vdestroy/encrypt').send({ plaintext: 'djE=' }).expect(200);
    const primary = await kh.http().post('/v1/keys/vdestroy/versions/1/schedule-destruction').send({ pendingDays: 7 });
    assert.equal(primary.status, 409, 'the primary version cannot be scheduled');
    await kh.http().post('/v1/keys/vdestroy/rotate').expect(200);
    const v2 = await kh.http().post('/v1/keys/vdestroy/encrypt').send({ plaintext: 'djI=' }).expect(200);
    const scheduled = await kh
      .http()
      .post('/v1/keys/vdestroy/versions/1/schedule-destruction')
      .send({ pendingDays: 10 })
      .expect(200);
    assert.equal(scheduled.body.versions[0].state, 'pending_destruction');
    const pending = await kh.http().post('/v1/keys/vdestroy/decrypt').send({ ciphertext: v1.body.ciphertext });
    assert.equal(pending.body.error.code, 'KEY_VERSION_DISABLED');
    const cancelled = await kh.http().post('/v1/keys/vdestroy/versions/1/cancel-destruction').expect(200);
    assert.equal(cancelled.body.versions[0].state, 'disabled');
    await kh.http().post('/v1/keys/vdestroy/versions/1/schedule-destruction').send({ pendingDays: 10 }).expect(200);

    kh.clock.advanceDays(10);
    const pass = await kh.server.scheduler.runOnce();
    assert.ok(pass.destroyed.some((entry) => entry.key === 'vdestroy' && entry.versions.join() === '1' && !entry.keyDestroyed));
    const rows = await materialOf(kh, 'vdestroy');
    assert.equal(rows[0].material, null);
    assert.equal(rows[0].state, 'destroyed');
    assert.ok(rows[1].material && rows[1].material.length > 0);
    const gone = await kh.http().post('/v1/keys/vdestroy/decrypt').send({ ciphertext: v1.body.ciphertext });
    assert.equal(gone.status, 422);
    assert.equal(gone.body.error.code, 'KEY_VERSION_DESTROYED');
    const alive = await kh.http().post('/v1/keys/vdestroy/decrypt').send({ ciphertext: v2.body.ciphertext }).expect(200);
    assert.equal(alive.body.plaintext, 'djI=');
    const key = await kh.client().getKey('vdestroy');
    assert.equal(key.state, 'enabled');
    assert.equal(key.versions[0].state, 'destroyed');
  });

  it('rotates keys automatically when their period has passed, exactly once per period', async () => {
    await kh.http().post('/v1/keys').send({ name: 'auto', algorithm: 'aes-256-gcm', rotationPeriodDays: 30 }).expect(201);
    await kh.http().post('/v1/keys').send({ name: 'manual-only', algorithm: 'aes-256-gcm' }).expect(201);
    kh.clock.advanceDays(29);
    let pass = await kh.server.scheduler.runOnce();
    assert.ok(!pass.rotated.includes('auto'));
    kh.clock.advanceDays(1);
    pass = await kh.server.scheduler.runOnce();
    assert.ok(pass.rotated.includes('auto'));
    assert.ok(!pass.rotated.includes('manual-only'));
    pass = await kh.server.scheduler.runOnce();
    assert.ok(!pass.rotated.includes('auto'), 'a second pass at the same time does nothing');
    const key = await kh.client().getKey('auto');
    assert.equal(key.primaryVersion, 2);
    assert.equal(key.nextRotationAt, new Date(kh.clock.now().getTime() + 30 * 86_400_000).toISOString());
    const ct = await kh.client().encrypt('auto', Buffer.from('after rotation'));
    assert.equal(ct.keyVersion, 2, 'the cache saw the rotation');
  });

  it('lets only one scheduler run at a time (advisory lock)', async () => {
    const runner = kh.dataSource.createQueryRunner();
    await runner.connect();
    try {
      await runner.query('SELECT pg_advisory_lock($1)', [0x6b6579_01]);
      const pass = await kh.server.scheduler.runOnce();
      assert.equal(pass.ran, false);
      await runner.query('SELECT pg_advisory_unlock($1)', [0x6b6579_01]);
      assert.equal((await kh.server.scheduler.runOnce()).ran, true);
    } finally {
      await runner.release();
    }
  });
  // Last: it seals this Keyhold.
  it('stops a pass when Keyhold is sealed in the middle of it: no later destruction runs', async () => {
    for (const name of ['sealed-a', 'sealed-b']) {
      await kh.http().post('/v1/keys').send({ name, algorithm: 'aes-256-gcm' }).expect(201);
      await kh.http().post(`/v1/keys/${name}/disable`).expect(200);
      await kh.http().post(`/v1/keys/${name}/schedule-destruction`).send({ pendingDays: 7 }).expect(200);
    }
    kh.clock.advanceDays(8);
    const seal = kh.server.seal.state;
    let ran = 0;
    // The real key service; the seal lands right after the first due key is done.
    const sealingAfterFirst = {
      runDueWork: async (name: string) => {
        const result = await kh.server.keys.runDueWork(name);
        ran += 1;
        if (ran === 1) await seal.seal();
        return result;
      },
    } as unknown as typeof kh.server.keys;
    const scheduler = new LifecycleScheduler(kh.dataSource, new TypeormKeyRepository(kh.dataSource), sealingAfterFirst, kh.clock, 60_000, () => seal.sealed);
    const pass = await scheduler.runOnce();
    assert.equal(ran, 1);
    assert.equal(pass.destroyed.length, 1);
    const states = await kh.dataSource.query(`SELECT name, state FROM keyhold_keys WHERE name IN ('sealed-a', 'sealed-b') ORDER BY name`);
    assert.deepEqual(
      states.map((row: { state: string }) => row.state).sort(),
      ['destroyed', 'pending_destruction'],
      'the second key waits for the next pass after an unseal',
    );
  });
});
