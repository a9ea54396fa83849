// Unit tests of the plugin's pure parts and of KeyholdKek against a scripted Keyhold (no network).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { KeyView } from '@keyhold/client-sdk';
import { KeyholdApiError, KeyholdNetworkError } from '@keyhold/client-sdk';
import { annotationsDigest, annotationsProblem, isFullyQualifiedDomainName } from './annotations';
import { ConfigError, loadConfig, parseListen } from './config';
import { PluginError } from './errors';
import { deriveKeyId, keyIdHash } from './key-id';
import { KeyholdKek, type KeyholdUpstream } from './keyhold-kek';
import { Logger } from './logger';
import { PluginMetrics } from './metrics';

const key = (primaryVersion: number, state: KeyView['state'] = 'enabled'): KeyView => ({
  name: 'k',
  algorithm: 'aes-256-gcm',
  description: null,
  state,
  primaryVersion,
  minDecryptionVersion: 1,
  rotationPeriodDays: null,
  nextRotationAt: null,
  destroyAt: null,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
  labels: {},
  encryptions: 0,
  versions: Array.from({ length: primaryVersion }, (_, i) => ({
    version: i + 1,
    state: 'enabled' as const,
    createdAt: `2026-01-0${i + 1}T00:00:00.000Z`,
    destroyAt: null,
    destroyedAt: null,
    encryptions: 0,
    lastUsedAt: null,
  })),
});

function scripted(overrides: Partial<KeyholdUpstream> & { view?: () => KeyView } = {}) {
  const calls: string[] = [];
  let version = 1;
  const upstream: KeyholdUpstream & { setVersion(v: number): void; calls: string[] } = {
    calls,
    setVersion: (v) => (version = v),
    getKey: async () => (calls.push('getKey'), overrides.view ? overrides.view() : key(version)),
    encrypt: async (_n, pt) => (calls.push('encrypt'), { ciphertext: `kh1:k:${version}:${Buffer.from(pt).toString('base64')}`, keyName: 'k', keyVersion: version }),
    decrypt: async (_n, ct) => (calls.push('decrypt'), { plaintext: Buffer.from(ct.split(':')[3], 'base64'), keyName: 'k', keyVersion: 1 }),
    ...overrides,
  };
  return upstream;
}

const options = { keyName: 'k', keyIdSuffix: '', refreshIntervalMs: 60_000, probeIntervalMs: 60_000, upstreamTimeoutMs: 200, upstreamConcurrency: 2 };
const quiet = new Logger('silent');

void describe('key_id', () => {
  void it('is stable, short, and different for every version, key incarnation and suffix', () => {
    const v1 = { version: 1, createdAt: '2026-01-01T00:00:00.000Z' };
    const a = deriveKeyId({ name: 'k', createdAt: 'x' }, v1);
    assert.equal(a, deriveKeyId({ name: 'k', createdAt: 'x' }, v1));
    assert.match(a, /^kh-v1-[A-Za-z0-9_-]{22}$/);
    const others = [
      deriveKeyId({ name: 'k', createdAt: 'y' }, v1),
      deriveKeyId({ name: 'k', createdAt: 'x' }, { ...v1, version: 2 }),
      deriveKeyId({ name: 'k', createdAt: 'x' }, { ...v1, createdAt: 'z' }),
      deriveKeyId({ name: 'k', createdAt: 'x' }, v1, 'suffix'),
    ];
    assert.equal(new Set([a, ...others]).size, 5);
    assert.match(keyIdHash(a), /^sha256:[0-9a-f]{64}$/);
  });
});

void describe('annotations', () => {
  void it('follow the apiserver FQDN rule and size limit; the digest ignores order but not content', () => {
    for (const ok of ['a.b', 'format.kms-v2.keyhold.dev', 'x-ms-request-id.azure.akv.io', 'a.b.']) assert.ok(isFullyQualifiedDomainName(ok), ok);
    for (const bad of ['single', 'kms.example.io/remote', 'UPPER.case', '-a.b', 'a..b', `${'a'.repeat(64)}.b`, '']) assert.ok(!isFullyQualifiedDomainName(bad), bad);
    assert.equal(annotationsProblem({ 'a.b': Buffer.alloc(40_000) })?.includes('more than 32768'), true);
    const x = { 'a.b': Buffer.from('1'), 'c.d': Buffer.from('2') };
    assert.equal(annotationsDigest(x), annotationsDigest({ 'c.d': Buffer.from('2'), 'a.b': Buffer.from('1') }));
    assert.notEqual(annotationsDigest(x), annotationsDigest({ 'a.b': Buffer.from('1') }));
    assert.notEqual(annotationsDigest({ 'a.b': Buffer.from('1c.d') }), annotationsDigest({ 'a.b1c.d': Buffer.from('') }));
  });
});

void describe('configuration', () => {
  const base = { KEYHOLD_URL: 'https://k:8443', KEYHOLD_CA_FILE: 'a', KEYHOLD_CERT_FILE: 'b', KEYHOLD_KEY_FILE: 'c', KEYHOLD_KMS_KEY: 'k' };
  void it('has safe defaults and refuses bad values with the variable named', () => {
    const c = loadConfig(base);
    assert.equal(c.socketPath, '/var/run/keyhold-kms/kms.sock');
    assert.equal(c.socketMode, 0o600);
    assert.ok(c.upstreamTimeoutMs < 3000);
    assert.throws(() => loadConfig({ ...base, KEYHOLD_URL: '' }), /KEYHOLD_URL is required/);
    assert.throws(() => loadConfig({ ...base, KEYHOLD_KMS_SOCKET_MODE: '0666' }), /others no access/);
    assert.throws(() => loadConfig({ ...base, KEYHOLD_KMS_KEY: 'Bad Name' }), ConfigError);
    assert.throws(() => loadConfig({ ...base, KEYHOLD_KMS_UPSTREAM_TIMEOUT_MS: 'soon' }), /KEYHOLD_KMS_UPSTREAM_TIMEOUT_MS/);
    assert.equal(parseListen('/abs/kms.sock'), '/abs/kms.sock');
    assert.equal(parseListen('unix:///abs/kms.sock'), '/abs/kms.sock');
    assert.throws(() => parseListen('unix:///@abstract'), /abstract/);
    assert.throws(() => parseListen(`unix:///${'x'.repeat(120)}`), /107 bytes/);
  });
});

void describe('KeyholdKek against a scripted Keyhold', () => {
  void it('Encrypt that meets a rotation not seen yet re-reads the metadata and returns the key_id Status then reports', async () => {
    const up = scripted();
    const kek = new KeyholdKek(up, options, quiet, new PluginMetrics());
    await kek.start();
    kek.stop();
    const first = kek.status().key_id;
    up.setVersion(2); // Keyhold rotated; the plugin's cache still says v1
    const res = await kek.encrypt(Buffer.alloc(32, 7), 'u', Date.now() + 3000);
    assert.match(res.key_id, /^kh-v2-/);
    assert.equal(kek.status().key_id, res.key_id);
    assert.notEqual(first, res.key_id);
    assert.deepEqual(up.calls.slice(-3), ['encrypt', 'getKey', 'encrypt']);
  });

  void it('Status policy: transient failures keep the key_id with a non-ok healthz; revocation is a gRPC error', async () => {
    let fail: Error | undefined;
    let state: KeyView['state'] = 'enabled';
    const up = scripted({
      view: () => {
        if (fail) throw fail;
        return key(1, state);
      },
    });
    const kek = new KeyholdKek(up, options, quiet, new PluginMetrics());
    await kek.start();
    kek.stop();
    assert.equal(kek.status().healthz, 'ok');
    fail = new KeyholdNetworkError({ message: 'connect ECONNREFUSED', cause: null, timedOut: false, baseUrl: 'x', method: 'GET', path: '/' });
    await kek.refresh().catch(() => undefined);
    assert.match(kek.status().healthz, /keyhold unreachable for \d+s/);
    fail = new KeyholdApiError({ status: 403, code: 'FORBIDDEN', message: 'no grant', method: 'GET', path: '/' });
    await kek.refresh().catch(() => undefined);
    assert.throws(() => kek.status(), (e: PluginError) => e.code === status.PERMISSION_DENIED);
    fail = undefined;
    state = 'disabled';
    await kek.refresh().catch(() => undefined);
    assert.throws(() => kek.status(), (e: PluginError) => e.code === status.FAILED_PRECONDITION && /disabled/.test(e.message));
  });

  void it('upstream calls end at the RPC deadline, and at most upstreamConcurrency are in flight', async () => {
    let inFlight = 0;
    let peak = 0;
    const up = scripted({
      encrypt: (_n, pt) =>
        new Promise((resolve) => {
          inFlight += 1;
          peak = Math.max(peak, inFlight);
          setTimeout(() => {
            inFlight -= 1;
            resolve({ ciphertext: `kh1:k:1:${Buffer.from(pt).toString('base64')}`, keyName: 'k', keyVersion: 1 });
          }, 30);
        }),
    });
    const kek = new KeyholdKek(up, { ...options, upstreamTimeoutMs: 2000 }, quiet, new PluginMetrics());
    await kek.start();
    kek.stop();
    await Promise.all(Array.from({ length: 8 }, () => kek.encrypt(Buffer.alloc(32, 1), 'u', Date.now() + 3000)));
    assert.equal(peak, 2);
    const hanging = scripted({ encrypt: () => new Promise(() => undefined) });
    const slow = new KeyholdKek(hanging, { ...options, upstreamTimeoutMs: 300 }, quiet, new PluginMetrics());
    await slow.start();
    slow.stop();
    await assert.rejects(slow.encrypt(Buffer.alloc(32, 1), 'u', Date.now() + 100), (e: PluginError) => e.code === status.DEADLINE_EXCEEDED);
    await assert.rejects(slow.encrypt(Buffer.alloc(32, 1), 'u', Date.now() - 1), (e: PluginError) => e.code === status.DEADLINE_EXCEEDED);
  });

  void it('Decrypt refuses an unknown key_id after at most one metadata read per second', async () => {
    const up = scripted();
    const kek = new KeyholdKek(up, options, quiet, new PluginMetrics());
    await kek.start();
    kek.stop();
    const before = up.calls.filter((c) => c === 'getKey').length;
    const decryptsBefore = up.calls.filter((c) => c === 'decrypt').length; // the start-up probe's
    for (let i = 0; i < 5; i++) {
      await assert.rejects(kek.decrypt(Buffer.from('kh1:k:1:AAAA'), 'kh-v1-unknown', {}, 'u', Date.now() + 3000), /unknown key_id/);
    }
    assert.equal(up.calls.filter((c) => c === 'getKey').length - before, 1);
    assert.equal(up.calls.filter((c) => c === 'decrypt').length, decryptsBefore, 'never a key operation for an unknown key_id');
  });
});
