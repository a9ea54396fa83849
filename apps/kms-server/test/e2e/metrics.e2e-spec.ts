import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestAdmin, enrolAdmin, setupTokenOf } from '../support/test-admins';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

/** The value of one series in a Prometheus text exposition (undefined when absent). */
function sample(exposition: string, series: string): number | undefined {
  const line = exposition.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('metrics: GET /v1/metrics in the Prometheus text format, for any client certificate', () => {
  let kh: TestKeyhold;
  let admin: TestAdmin;
  const KEY = 'payroll-metrics-7f3a';
  const scrape = async () => {
    const response = await kh.http().get('/v1/metrics').expect(200);
    assert.equal(response.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal(response.headers['keyhold-audit-sequence'], undefined, 'a scrape touches no key: not recorded, like health');
    assert.equal(response.headers['cache-control'], 'no-store');
    return response.text;
  };

  before(async () => {
    kh = await startTestKeyhold({ admin: true });
    admin = await enrolAdmin(kh, 'alice', setupTokenOf(kh));
  });
  after(async () => {
    await kh.stop();
  });

  it('counts and times each cryptographic operation by status, the other routes by template, and the audit commits', async () => {
    await kh.http().post('/v1/keys').send({ name: KEY, algorithm: 'aes-256-gcm' }).expect(201);
    for (let i = 0; i < 3; i += 1) await kh.http().post(`/v1/keys/${KEY}/encrypt`).send({ plaintext: 'aGVsbG8=' }).expect(200);
    await kh.http().post(`/v1/keys/${KEY}/encrypt/batch`).send({ items: [{ plaintext: 'aGk=' }, { plaintext: 'aGk=' }] }).expect(200);
    await kh.http().post(`/v1/keys/${KEY}/decrypt`).send({ ciphertext: `kh1:${KEY}:1:AAAA` }).expect(422);
    await kh.http().get(`/v1/keys/${KEY}`).expect(200);
    await kh.adminHttp(admin.session).get('/api/v1/keys').expect(200);

    const text = await scrape();
    assert.equal(sample(text, 'keyhold_crypto_requests_total{operation="encrypt",status="200"}'), 3);
    assert.equal(sample(text, 'keyhold_crypto_requests_total{operation="encrypt.batch",status="200"}'), 1);
    assert.equal(sample(text, 'keyhold_crypto_requests_total{operation="decrypt",status="422"}'), 1);
    assert.equal(sample(text, 'keyhold_crypto_request_duration_seconds_count{operation="encrypt"}'), 3);
    assert.equal(sample(text, 'keyhold_crypto_request_duration_seconds_bucket{operation="encrypt",le="+Inf"}'), 3);
    assert.ok((sample(text, 'keyhold_crypto_request_duration_seconds_sum{operation="encrypt"}') ?? 0) > 0);
    assert.equal(sample(text, 'keyhold_http_requests_total{plane="service",route="/v1/keys/:name",status="200"}'), 1);
    assert.equal(sample(text, 'keyhold_http_requests_total{plane="service",route="/v1/keys",status="201"}'), 1);
    assert.equal(sample(text, 'keyhold_http_requests_total{plane="admin",route="/api/v1/keys",status="200"}'), 1);
    // Every answer above waited for its record: the audit commits counted them (the admin plane's included).
    assert.ok((sample(text, 'keyhold_audit_records_total') ?? 0) >= 5);
    assert.ok((sample(text, 'keyhold_audit_batch_duration_seconds_count') ?? 0) >= 1);
    assert.equal(sample(text, 'keyhold_audit_queued_records'), 0);
    assert.equal(sample(text, 'keyhold_audit_write_failures_total'), 0);
    assert.equal(sample(text, 'keyhold_audit_checkpoint_signing_ok'), 1);
    assert.equal(sample(text, 'keyhold_sealed'), 0);
    assert.equal(sample(text, 'keyhold_key_cache_keys'), 1);
    assert.ok((sample(text, 'process_resident_memory_bytes') ?? 0) > 10_000_000);
    assert.ok((sample(text, 'process_cpu_seconds_total') ?? 0) > 0);
    assert.notEqual(sample(text, 'nodejs_eventloop_delay_seconds{quantile="0.99"}'), undefined);
    // Labels carry operations, route templates and statuses: never a key name, an identity or request content.
    assert.ok(!text.includes(KEY), 'no key name in the metrics');
    assert.ok(!text.includes('spiffe://'), 'no identity in the metrics');
    assert.ok(!text.includes('aGVsbG8='), 'no request content in the metrics');
    // The scrape itself is a route like the others, counted once it is answered.
    assert.equal(sample(await scrape(), 'keyhold_http_requests_total{plane="service",route="/v1/metrics",status="200"}'), 1);
  });

  it('counts a path that matches no route under one label, and is served while sealed', async () => {
    await kh.http().get('/v1/no-such-thing/abc').expect(404);
    assert.equal(sample(await scrape(), 'keyhold_http_requests_total{plane="service",route="unknown-route",status="404"}'), 1);
    await kh.server.seal.state.seal();
    const text = await scrape();
    assert.equal(sample(text, 'keyhold_sealed'), 1);
    assert.equal(sample(text, 'keyhold_key_cache_keys'), 0, 'sealing empties the key cache');
  });
});
