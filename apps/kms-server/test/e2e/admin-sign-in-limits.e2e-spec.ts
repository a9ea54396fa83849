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
