// Conformance (H items of the KMS v2 checklist) against the real plugin process on a real unix socket,
// talking over mTLS to a real Keyhold (apps/kms-server on its embedded Postgres), with a grpc-js client.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { type KeyholdFixture, REPO, startKeyhold } from './support/keyhold-fixture';
import { KmsClient, type PluginProcess, eventually, httpGet, pluginEnv, startPlugin } from './support/plugin-fixture';

const KEY = 'k8s-secrets';
const FQDN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+\.?$/;

function grpcCode(error: unknown): string {
  return grpc.status[(error as grpc.ServiceError).code];
}

async function rejectsWith(promise: Promise<unknown>, code: keyof typeof grpc.status, pattern?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: grpc.ServiceError) => {
    assert.equal(grpcCode(error), code, `expected ${code}, got ${grpcCode(error)}: ${error.details}`);
    if (pattern) assert.match(error.details, pattern);
    return true;
  });
}

void describe('KMS v2 plugin: protocol conformance (grpc-js client)', () => {
  let keyhold: KeyholdFixture;
  let plugin: PluginProcess;
  let kms: KmsClient;
  const secrets: Buffer[] = [];

  before(async () => {
    keyhold = await startKeyhold({ pluginKeys: `${KEY}*` });
    await keyhold.operator.createKey({ name: KEY, algorithm: 'aes-256-gcm' });
    await keyhold.operator.createKey({ name: `${KEY}-other`, algorithm: 'aes-256-gcm' });
    plugin = await startPlugin(pluginEnv(keyhold, KEY, { KEYHOLD_KMS_SOCKET_MODE: '0660' }));
    kms = plugin.client;
    await eventually('healthy Status', async () => (await kms.status()).healthz === 'ok');
  });

  after(async () => {
    await plugin?.stop();
    // E6: the plugin's whole log holds no plaintext, no ciphertext (in any common encoding).
    if (plugin) {
      const log = plugin.output();
      for (const secret of secrets) {
        for (const form of [secret.toString('base64'), secret.toString('hex'), secret.toString('base64url')]) {
          assert.ok(!log.includes(form), 'a plaintext or ciphertext appears in the plugin log');
        }
      }
    }
    await keyhold?.close();
  });

  void it('T1: listens on the file-system socket, created with the configured restrictive mode', () => {
    const st = statSync(plugin.socketPath);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o660);
    assert.equal(statSync(plugin.socketPath.replace(/\/kms\.sock$/, '')).mode & 0o007, 0, 'the parent folder gives others nothing');
  });

  void it('S1-S3: Status answers v2, ok and a short non-secret key_id, the same on every call', async () => {
    const first = await kms.status();
    assert.equal(first.version, 'v2');
    assert.equal(first.healthz, 'ok');
    assert.match(first.key_id, /^kh-v1-[A-Za-z0-9_-]{22}$/);
    assert.ok(Buffer.byteLength(first.key_id) <= 1023);
    for (let i = 0; i < 20; i++) assert.deepEqual(await kms.status(), first);
  });

  void it('E1, E2, E4, D1: a 32-byte seed wraps under 1 kB with FQDN annotations and unwraps to the same bytes', async () => {
    const { key_id } = await kms.status();
    const seed = randomBytes(32);
    secrets.push(seed);
    const res = await kms.encrypt(Buffer.from(seed), 'e1-uid');
    secrets.push(res.ciphertext);
    assert.equal(res.key_id, key_id, 'Encrypt key_id == Status key_id');
    assert.ok(res.ciphertext.length > 0 && res.ciphertext.length <= 512, `ciphertext is ${res.ciphertext.length} bytes (limit 1024, margin kept)`);
    let total = 0;
    for (const [k, v] of Object.entries(res.annotations)) {
      assert.match(k, FQDN);
      assert.ok(!k.includes('/'));
      total += Buffer.byteLength(k) + v.length;
    }
    assert.ok(total <= 32768);
    const plain = await kms.decrypt({ ciphertext: res.ciphertext, key_id: res.key_id, annotations: res.annotations });
    assert.deepEqual(plain, seed);
  });

  void it('E1: plaintexts of 1 to 4096 bytes round-trip; empty and larger ones are INVALID_ARGUMENT', async () => {
    for (const size of [1, 16, 33, 1000, 4096]) {
      const pt = randomBytes(size);
      const res = await kms.encrypt(Buffer.from(pt));
      assert.deepEqual(await kms.decrypt(res), pt);
    }
    await rejectsWith(kms.encrypt(Buffer.alloc(0)), 'INVALID_ARGUMENT', /empty/);
    await rejectsWith(kms.encrypt(Buffer.alloc(4097)), 'INVALID_ARGUMENT', /at most 4096/);
  });

  void it('D2: a tampered ciphertext, key_id or annotation map is refused with INVALID_ARGUMENT', async () => {
    const res = await kms.encrypt(randomBytes(32));
    const flipped = Buffer.from(res.ciphertext);
    flipped[flipped.length - 5] ^= 0x01;
    await rejectsWith(kms.decrypt({ ...res, ciphertext: flipped }), 'INVALID_ARGUMENT');
    await rejectsWith(kms.decrypt({ ...res, ciphertext: res.ciphertext.subarray(0, res.ciphertext.length - 4) }), 'INVALID_ARGUMENT');
    const ann = Object.keys(res.annotations)[0];
    await rejectsWith(kms.decrypt({ ...res, annotations: { ...res.annotations, [ann]: Buffer.from('2') } }), 'INVALID_ARGUMENT');
    await rejectsWith(kms.decrypt({ ...res, annotations: {} }), 'INVALID_ARGUMENT', /authenticate/);
    await rejectsWith(kms.decrypt({ ...res, annotations: { ...res.annotations, 'extra.example.com': Buffer.from('x') } }), 'INVALID_ARGUMENT');
    await rejectsWith(kms.decrypt({ ...res, annotations: { 'kms.example.io/remote': Buffer.from('x') } }), 'INVALID_ARGUMENT', /fully qualified/);
    const otherKeyId = res.key_id.slice(0, -1) + (res.key_id.endsWith('A') ? 'B' : 'A');
    await rejectsWith(kms.decrypt({ ...res, key_id: otherKeyId }), 'INVALID_ARGUMENT', /unknown key_id/);
  });

  void it('D3, D4: unknown key_id, empty or oversized input and foreign ciphertexts are refused before any key operation', async () => {
    const res = await kms.encrypt(randomBytes(32));
    await rejectsWith(kms.decrypt({ ...res, key_id: 'kh-v9-not-a-key-id-of-ours' }), 'INVALID_ARGUMENT', /unknown key_id/);
    await rejectsWith(kms.decrypt({ ...res, key_id: '' }), 'INVALID_ARGUMENT', /key_id is empty/);
    await rejectsWith(kms.decrypt({ ...res, key_id: 'x'.repeat(1024) }), 'INVALID_ARGUMENT', /longer/);
    await rejectsWith(kms.decrypt({ ...res, ciphertext: Buffer.alloc(0) }), 'INVALID_ARGUMENT', /empty/);
    await rejectsWith(kms.decrypt({ ...res, ciphertext: Buffer.alloc(9000, 0x41) }), 'INVALID_ARGUMENT', /at most/);
    await rejectsWith(kms.decrypt({ ...res, ciphertext: randomBytes(100) }), 'INVALID_ARGUMENT', /not a Keyhold ciphertext/);
    // A ciphertext of another Keyhold key the plugin could even decrypt: refused, it is not this provider's.
    const foreign = await keyhold.operator.encrypt(`${KEY}-other`, randomBytes(32));
    await rejectsWith(kms.decrypt({ ...res, ciphertext: Buffer.from(foreign.ciphertext) }), 'INVALID_ARGUMENT', /not k8s-secrets/);
    // key_id of version 1 with a ciphertext claiming version 2 (header edited): refused locally.
    const edited = Buffer.from(res.ciphertext.toString('latin1').replace(`:${KEY}:1:`, `:${KEY}:2:`), 'latin1');
    await rejectsWith(kms.decrypt({ ...res, ciphertext: edited }), 'INVALID_ARGUMENT', /version/);
  });

  void it('T3: methods other than Status, Encrypt and Decrypt answer UNIMPLEMENTED', async () => {
    const err = await new Promise<grpc.ServiceError>((resolve) => {
      kms.raw.makeUnaryRequest(
        '/v2.KeyManagementService/Rotate',
        (x: Buffer) => x,
        (x: Buffer) => x,
        Buffer.alloc(0),
        { deadline: Date.now() + 3000 },
        (e) => resolve(e as grpc.ServiceError),
      );
    });
    assert.equal(grpcCode(err), 'UNIMPLEMENTED');
  });

  void it('T4, T5: authority "localhost" without metadata works; the socket path as authority (apiserver <= 1.31) is refused by grpc-js', async () => {
    const plain = new KmsClient(plugin.socketPath, {});
    try {
      assert.equal((await plain.status()).version, 'v2');
    } finally {
      plain.close();
    }
    const old = new KmsClient(plugin.socketPath, { 'grpc.default_authority': plugin.socketPath });
    try {
      await assert.rejects(old.status(2000));
    } finally {
      old.close();
    }
  });

  void it("independent client: Debian's python3-grpcio (C-core) with stubs generated from the project's .proto", async () => {
    const stubs = mkdtempSync(join(tmpdir(), 'kms-py-'));
    const script = join(REPO, 'apps/k8s-kms-plugin/test/python/kms_v2_client.py');
    const proto = join(REPO, 'apps/k8s-kms-plugin/proto');
    const { stdout, failed } = await new Promise<{ stdout: string; failed: string }>((resolve) => {
      execFile('/usr/bin/python3', [script, plugin.socketPath, proto, stubs], { timeout: 120_000 }, (error, out, err) =>
        resolve({ stdout: out, failed: error ? `${error.message}\n${err}` : '' }),
      );
    });
    const checks = stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as { check: string; ok: boolean; error?: string });
    assert.ok(checks.length >= 8, `the Python client ran its checks:\n${stdout}\n${failed}`);
    for (const c of checks) assert.ok(c.ok, `${c.check}: ${c.error}`);
    assert.equal(failed, '');
  });

  void it('E5: 10 000 random seeds give 10 000 distinct ciphertexts', async () => {
    const seen = new Set<string>();
    const seeds = Array.from({ length: 10_000 }, () => randomBytes(32));
    let next = 0;
    const worker = async () => {
      while (next < seeds.length) {
        const seed = seeds[next++];
        const res = await kms.encrypt(seed, `seed-${next}`, 10_000);
        seen.add(`${res.key_id}|${res.ciphertext.toString('base64')}|${JSON.stringify(res.annotations)}`);
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    assert.equal(seen.size, 10_000);
  });

  void it('D7: 500 concurrent Decrypts all succeed with the right plaintexts', async () => {
    const items = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const seed = randomBytes(32);
        return { seed, res: await kms.encrypt(Buffer.from(seed)) };
      }),
    );
    const results = await Promise.all(
      Array.from({ length: 500 }, async (_, i) => {
        const { seed, res } = items[i % items.length];
        const plain = await kms.decrypt({ ...res, uid: `burst-${i}` }, 10_000);
        return plain.equals(seed);
      }),
    );
    assert.equal(results.filter(Boolean).length, 500);
  });

  void it('D8: 600 concurrent Decrypts and Encrypts through one upstream connection all succeed (batches stay under the body limit)', async () => {
    // One connection and no concurrency cap: nearly every call waits, and they leave in batches as large as allowed.
    const burst = await startPlugin(pluginEnv(keyhold, KEY, { KEYHOLD_KMS_UPSTREAM_CONNECTIONS: '1', KEYHOLD_KMS_UPSTREAM_CONCURRENCY: '10000' }));
    try {
      await eventually('healthy Status', async () => (await burst.client.status()).healthz === 'ok');
      const items = await Promise.all(
        Array.from({ length: 60 }, async (_, i) => {
          const seed = randomBytes(32);
          return { seed, res: await burst.client.encrypt(Buffer.from(seed), `seed-${i}`, 30_000) };
        }),
      );
      const decrypted = await Promise.all(
        Array.from({ length: 600 }, async (_, i) => {
          const { seed, res } = items[i % items.length];
          return (await burst.client.decrypt({ ...res, uid: `burst-${i}` }, 30_000)).equals(seed);
        }),
      );
      assert.equal(decrypted.filter(Boolean).length, 600);
      const encrypted = await Promise.all(Array.from({ length: 600 }, (_, i) => burst.client.encrypt(randomBytes(32), `burst-${i}`, 30_000)));
      assert.equal(new Set(encrypted.map((res) => res.ciphertext.toString('base64'))).size, 600);
      assert.doesNotMatch(burst.output(), /PAYLOAD_TOO_LARGE/);
    } finally {
      await burst.stop();
    }
  });

  void it('R1, R2, E3, D5, D6: rotation in Keyhold changes the key_id once, Status and Encrypt never disagree, old ciphertexts decrypt on every replica', async () => {
    const before = await kms.status();
    const old = await kms.encrypt(randomBytes(32));
    // A second replica on its own socket: same key_id at the same time (D6 cross-replica below).
    const replica = await startPlugin(pluginEnv(keyhold, KEY));
    try {
      await eventually('replica healthy', async () => (await replica.client.status()).healthz === 'ok');
      assert.equal((await replica.client.status()).key_id, before.key_id);
      assert.ok((await replica.client.decrypt(old)).length === 32, 'a ciphertext of replica A decrypts on replica B');

      // Status, Encrypt, Status in a loop while Keyhold rotates: Encrypt's key_id equals the Status just
      // after it (the plugin learns a rotation before Encrypt returns), and ids only move forward.
      let stop = false;
      const observed: string[] = [];
      const loop = (async () => {
        while (!stop) {
          const s1 = await kms.status();
          const e = await kms.encrypt(randomBytes(32));
          const s2 = await kms.status();
          assert.ok(e.key_id === s1.key_id || e.key_id === s2.key_id, 'Encrypt key_id is one Status reported around it');
          assert.equal(s2.key_id, e.key_id, 'after an Encrypt, Status reports its key_id');
          observed.push(s1.key_id, e.key_id, s2.key_id);
        }
      })();
      await new Promise((r) => setTimeout(r, 300));
      const rotated = await keyhold.operator.rotateKey(KEY);
      assert.equal(rotated.primaryVersion, 2);
      await eventually('new key_id', async () => (await kms.status()).key_id !== before.key_id, 10_000);
      await new Promise((r) => setTimeout(r, 300));
      stop = true;
      await loop;
      const distinct = observed.filter((id, i) => i === 0 || id !== observed[i - 1]);
      assert.deepEqual(distinct.length, 2, `the key_id changed exactly once: ${distinct.join(' -> ')}`);
      const after = await kms.status();
      assert.match(after.key_id, /^kh-v2-/);
      await eventually('replica sees the rotation', async () => (await replica.client.status()).key_id === after.key_id, 10_000);

      // Old ciphertexts (old key_id) still decrypt, on both replicas; new ones too.
      assert.equal((await kms.decrypt(old)).length, 32);
      assert.equal((await replica.client.decrypt(old)).length, 32);
      const fresh = await kms.encrypt(randomBytes(32));
      assert.equal(fresh.key_id, after.key_id);
      assert.equal((await replica.client.decrypt(fresh)).length, 32);

      // R2: never reused: a third rotation gives a third id.
      await keyhold.operator.rotateKey(KEY);
      await eventually('third key_id', async () => (await kms.status()).key_id.startsWith('kh-v3-'), 10_000);
      const third = (await kms.status()).key_id;
      assert.ok(third !== before.key_id && third !== after.key_id);
    } finally {
      await replica.stop();
    }
    // D5: a restarted plugin still decrypts what the old process wrapped.
    await plugin.stop();
    plugin = await startPlugin(pluginEnv(keyhold, KEY), { socketPath: plugin.socketPath });
    kms = plugin.client;
    assert.equal((await kms.decrypt(old)).length, 32);
  });

  void it('O2, O3: /metrics has per-RPC histograms and counters by method and code and sha256(key_id); /healthz, /livez answer', async () => {
    await kms.status();
    await rejectsWith(kms.decrypt({ ciphertext: Buffer.alloc(0), key_id: 'x' }), 'INVALID_ARGUMENT');
    const { key_id } = await kms.status();
    const metrics = await httpGet(plugin.healthPort, '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /keyhold_kms_plugin_rpc_duration_seconds_bucket\{method="Status",code="OK",le="0.005"\} \d+/);
    assert.match(metrics.body, /keyhold_kms_plugin_rpc_total\{method="Decrypt",code="INVALID_ARGUMENT"\} 1/);
    const { createHash } = await import('node:crypto');
    const hash = `sha256:${createHash('sha256').update(key_id).digest('hex')}`;
    assert.match(metrics.body, new RegExp(`keyhold_kms_plugin_key_id_info\\{key_id_hash="${hash}",key_version="3"\\} 1`));
    assert.ok(!metrics.body.includes(key_id), 'the key_id itself is not a label, only its hash');
    assert.deepEqual(await httpGet(plugin.healthPort, '/healthz'), { status: 200, body: 'ok\n' });
    assert.equal((await httpGet(plugin.healthPort, '/livez')).status, 200);
    assert.equal((await httpGet(plugin.healthPort, '/nope')).status, 404);
  });

  void it('S4: Status is answered from the cache: 200 calls make no Keyhold request', async () => {
    const before = (await httpGet(plugin.healthPort, '/metrics')).body;
    const count = (text: string) =>
      [...text.matchAll(/keyhold_kms_plugin_upstream_duration_seconds_count\{[^}]*\} (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    const started = process.hrtime.bigint();
    await Promise.all(Array.from({ length: 200 }, () => kms.status()));
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    const after = (await httpGet(plugin.healthPort, '/metrics')).body;
    // Only the background refresh (every second here) may have called Keyhold meanwhile.
    assert.ok(count(after) - count(before) <= 2 + Math.ceil(elapsedMs / 1000) * 3, `${count(after) - count(before)} upstream calls`);
  });
});
