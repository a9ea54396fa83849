import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

describe('sign-in rate limits', () => {
  let kh: TestKeyhold;
  before(async () => {
    kh = await startTestKeyhold({ admin: true, signInRateLimit: { perSecond: 0.001, burst: 3 } });
  });
  after(() => kh.stop());

  it('answers 429 with Retry-After once an address has used its burst', async () => {
    const statuses: number[] = [];
    let retryAfter: unknown;
    for (let i = 0; i < 5; i += 1) {
      const response = await kh.adminHttp().post('/api/v1/session/options');
      statuses.push(response.status);
      if (response.status === 429) retryAfter = response.headers['retry-after'];
    }
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    assert.ok(Number(retryAfter) >= 1);
    const recovery = await kh.adminHttp().post('/api/v1/recovery').send({ name: 'x', code: 'AAAAA-BBBBB-CCCCC-DDDDD' });
    assert.equal(recovery.status, 429, 'recovery shares the budget');
    assert.equal((await kh.adminHttp().get('/docs')).status, 200, 'other routes are not limited');
  });
});

describe('recovery attempts per instance', () => {
  let kh: TestKeyhold;
  before(async () => {
    kh = await startTestKeyhold({ admin: true, signInRateLimit: { perSecond: 1, burst: 100 } });
  });
  after(() => kh.stop());

  it('checks one recovery attempt at a time, lets a few wait, and refuses the rest at once with 429 (and records them)', async () => {
    // Each attempt costs ten Argon2id checks whatever the name: many at once, within every per-address limit.
    const attempts = await Promise.all(
      Array.from({ length: 20 }, (_, index) => kh.adminHttp().post('/api/v1/recovery').send({ name: `nobody-${index}`, code: 'AAAAA-BBBBB-CCCCC-DDDDD' })),
    );
    const checked = attempts.filter((response) => response.status === 401);
    const refused = attempts.filter((response) => response.status === 429);
    assert.equal(checked.length + refused.length, attempts.length, attempts.map((response) => response.status).join(','));
    assert.ok(checked.length >= 1 && refused.length >= 1, `checked ${checked.length}, refused ${refused.length}`);
    for (const response of refused) {
      assert.equal(response.headers['retry-after'], '2');
      assert.equal(response.body.error.code, 'RATE_LIMITED');
      assert.match(response.body.error.message, /other recovery attempts are being checked; retry in 2 s/);
    }
    const [{ count }] = await kh.dataSource.query(`SELECT count(*)::int AS count FROM keyhold_audit_records WHERE operation = 'admin.recovery' AND error_code = 'RATE_LIMITED'`);
    assert.equal(count, refused.length, 'each refusal is on record');
    // Once they are done, the next attempt is checked again.
    assert.equal((await kh.adminHttp().post('/api/v1/recovery').send({ name: 'nobody', code: 'AAAAA-BBBBB-CCCCC-DDDDD' })).status, 401);
  });
});
