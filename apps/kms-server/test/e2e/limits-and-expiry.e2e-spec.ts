import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { OPERATOR, type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

describe('401 for a certificate that expires on a kept-alive connection, 429 per identity', () => {
  let kh: TestKeyhold;
  let certificateTime = Date.now();
  before(async () => {
    kh = await startTestKeyhold({
      rateLimit: { perSecond: 0.001, burst: 5 },
      certificateClock: () => certificateTime,
      grants: [
        { identity: OPERATOR, keys: '*', operations: ['*'] },
        { identity: 'spiffe://test.keyhold/short-lived', keys: '*', operations: ['*'] },
        { identity: 'spiffe://test.keyhold/noisy', keys: '*', operations: ['random'] },
        { identity: 'spiffe://test.keyhold/quiet', keys: '*', operations: ['random'] },
      ],
    });
  });
  after(() => kh.stop());

  it('answers 401 UNAUTHENTICATED once the certificate of an open connection has expired', async () => {
    const credentials = await kh.issueClient({
      uri: 'spiffe://test.keyhold/short-lived',
      notAfter: new Date(Date.now() + 3_600_000),
    });
    const client = kh.client(credentials);
    const first = await client.request('POST', '/v1/random', { bytes: 4 });
    assert.equal(first.status, 200);
    certificateTime = Date.now() + 2 * 3_600_000;
    const second = await client.request<{ error: { code: string } }>('POST', '/v1/random', { bytes: 4 });
    assert.equal(second.status, 401);
    assert.equal(second.body.error.code, 'UNAUTHENTICATED');
    certificateTime = Date.now();
  });

  it('answers 429 RATE_LIMITED with Retry-After past the burst, for that identity only', async () => {
    const noisy = await kh.issueClient({ uri: 'spiffe://test.keyhold/noisy' });
    const quiet = await kh.issueClient({ uri: 'spiffe://test.keyhold/quiet' });
    const statuses: number[] = [];
    let limited: { status: number; headers: Record<string, unknown>; body: { error: { code: string } } } | null = null;
    for (let i = 0; i < 7; i += 1) {
      const response = await kh.http(noisy).post('/v1/random').send({ bytes: 1 });
      statuses.push(response.status);
      if (response.status === 429) limited = response;
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429]);
    assert.ok(limited);
    assert.equal(limited.body.error.code, 'RATE_LIMITED');
    assert.ok(Number(limited.headers['retry-after']) >= 1);
    const other = await kh.http(quiet).post('/v1/random').send({ bytes: 1 });
    assert.equal(other.status, 200, 'another identity is not affected');
  });
});
