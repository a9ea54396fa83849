// kube-apiserver's side of KMS v2, emulated on a fake clock against the real plugin and a real Keyhold:
// start-up, steady polling, rotation (Status -> Encrypt, staleness), the 3-minute write expiry, the
// #138950 behaviour of the Status policy, an apiserver restart, two HA apiservers, and the
// `rewrite-secrets` command against a fake Kubernetes API server whose Secrets go through the emulator.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rewriteSecretsCommand } from '../src/rewrite-secrets';
import { ApiserverEmulator, FakeClock, POLL_HEALTHY_MS, WRITE_STATE_TTL_MS, decodeEncryptedObject } from './support/apiserver-emulator';
import { type FakeKubeApi, startFakeKubeApi } from './support/fake-kube-api';
import { type KeyholdFixture, REPO, startKeyhold } from './support/keyhold-fixture';
import { type PluginProcess, eventually, pluginEnv, startPlugin } from './support/plugin-fixture';

const KEY = 'k8s-harness';
const storedKeyId = (emulator: ApiserverEmulator, value: Buffer) => decodeEncryptedObject(value.subarray(emulator.prefix.length)).keyID;

void describe('apiserver emulator on a fake clock (KMS v2 envelope rules) against the real plugin', () => {
  let keyhold: KeyholdFixture;
  let plugin: PluginProcess;
  let replica: PluginProcess;
  let apiserver: ApiserverEmulator;
  const clock = new FakeClock();
  const values = new Map<string, Buffer>();

  const waitPluginKeyId = async (p: PluginProcess, prefix: string) =>
    eventually(`plugin key_id ${prefix}`, async () => (await p.client.status()).key_id.startsWith(prefix), 15_000);

  before(async () => {
    keyhold = await startKeyhold({ pluginKeys: KEY });
    await keyhold.operator.createKey({ name: KEY, algorithm: 'aes-256-gcm' });
    const env = pluginEnv(keyhold, KEY, { KEYHOLD_KMS_REFRESH_INTERVAL_SECONDS: '0.5', KEYHOLD_KMS_UPSTREAM_TIMEOUT_MS: '1000', KEYHOLD_KMS_LOG_LEVEL: 'info' });
    [plugin, replica] = await Promise.all([startPlugin(env), startPlugin(env)]);
    await eventually('healthy', async () => (await plugin.client.status()).healthz === 'ok');
    apiserver = new ApiserverEmulator(plugin.client, clock);
  });

  after(async () => {
    keyhold?.signal('SIGCONT');
    await Promise.all([plugin?.stop(), replica?.stop()]);
    await keyhold?.close();
  });

  void it('start-up: one Status and one Encrypt make the write state; steady polls never call Encrypt again', async () => {
    await assert.rejects(async () => apiserver.write('/registry/secrets/default/x', Buffer.from('{}')), /no valid KMS v2 state/);
    await apiserver.advance(0);
    assert.equal(apiserver.healthy, true, apiserver.lastProblem);
    assert.deepEqual(apiserver.calls, { status: 1, encrypt: 1, decrypt: 0 });
    assert.match(apiserver.currentKeyId ?? '', /^kh-v1-/);
    for (let i = 0; i < 10; i++) {
      const path = `/registry/secrets/ns${i % 3}/s${i}`;
      const value = apiserver.write(path, Buffer.from(JSON.stringify({ data: { v: Buffer.from(`secret ${i}`).toString('base64') } })));
      assert.ok(value.subarray(0, 24).toString().startsWith('k8s:enc:kms:v2:keyhold:'));
      values.set(path, value);
    }
    await apiserver.advance(30 * 60_000); // half an hour of healthy polls, one a minute
    assert.equal(apiserver.calls.status, 31);
    assert.equal(apiserver.calls.encrypt, 1, 'the same key_id only extends the state');
    for (const [path, value] of values) assert.equal((await apiserver.read(path, value)).stale, false);
    assert.equal(apiserver.calls.decrypt, 0, 'its own seed is in the cache');
  });

  void it('rotation: Keyhold rotates, the next poll sees the new key_id and Encrypts once; old data reads as stale and still decrypts', async () => {
    const oldKeyId = apiserver.currentKeyId;
    await keyhold.operator.rotateKey(KEY);
    await waitPluginKeyId(plugin, 'kh-v2-');
    // Until the next poll the apiserver coasts on its current seed.
    const coasted = apiserver.write('/registry/secrets/default/coast', Buffer.from('{"data":{}}'));
    assert.equal(storedKeyId(apiserver, coasted), oldKeyId);
    await apiserver.advance(POLL_HEALTHY_MS);
    assert.equal(apiserver.healthy, true, apiserver.lastProblem);
    assert.equal(apiserver.calls.encrypt, 2, 'exactly one Encrypt for the rotation (Status and Encrypt agreed)');
    assert.match(apiserver.currentKeyId ?? '', /^kh-v2-/);
    const fresh = apiserver.write('/registry/secrets/default/fresh', Buffer.from('{"data":{}}'));
    assert.equal(storedKeyId(apiserver, fresh), apiserver.currentKeyId);
    for (const [path, value] of values) {
      const read = await apiserver.read(path, value);
      assert.equal(read.stale, true, 'written under the old key_id: a storage migration will rewrite it');
      assert.match(read.data.toString(), /"data"/);
    }
  });

  void it('restart and HA: a new apiserver (empty cache) Encrypts once and Decrypts each distinct seed once; a second apiserver on another plugin replica reads it all', async () => {
    const restarted = new ApiserverEmulator(plugin.client, new FakeClock(clock.now()));
    await restarted.advance(0);
    for (const [path, value] of values) await restarted.read(path, value);
    assert.deepEqual(restarted.calls, { status: 1, encrypt: 1, decrypt: 1 }, 'one Decrypt for the one seed all old values share');
    // The replica polls Keyhold on its own: on a loaded machine, let it see the rotation first.
    await waitPluginKeyId(replica, 'kh-v2-');
    const ha = new ApiserverEmulator(replica.client, new FakeClock(clock.now()));
    await ha.advance(0);
    assert.equal(ha.currentKeyId, apiserver.currentKeyId, `both replicas report the same key_id (${ha.lastProblem || 'healthy'})`);
    const written = restarted.write('/registry/secrets/default/by-a', Buffer.from('{"data":{"a":"YQ=="}}'));
    assert.equal((await ha.read('/registry/secrets/default/by-a', written)).data.toString(), '{"data":{"a":"YQ=="}}');
    assert.equal((await ha.read('/registry/secrets/default/by-a', written)).stale, false);
  });

  void it('Status policy: a Keyhold outage keeps healthz non-ok but the key_id valid, so writes continue (kubernetes#138950); a disabled key errors and writes stop after 3 minutes', async () => {
    keyhold.signal('SIGSTOP');
    try {
      await eventually('plugin degraded', async () => (await plugin.client.status()).healthz !== 'ok', 10_000);
      await apiserver.advance(10 * 60_000);
      assert.equal(apiserver.healthy, false, 'readyz/kms-providers fails');
      assert.match(apiserver.lastProblem, /keyhold unreachable/);
      apiserver.write('/registry/secrets/default/during-outage', Buffer.from('{"data":{}}')); // still allowed
    } finally {
      keyhold.signal('SIGCONT');
    }
    await eventually('plugin healthy', async () => (await plugin.client.status()).healthz === 'ok', 15_000);
    await apiserver.advance(POLL_HEALTHY_MS);
    assert.equal(apiserver.healthy, true, apiserver.lastProblem);

    await keyhold.operator.disableKey(KEY);
    try {
      await eventually('plugin Status errors', async () => {
        try {
          await plugin.client.status();
          return false;
        } catch {
          return true;
        }
      });
      const cached = [...values][0];
      await apiserver.advance(POLL_HEALTHY_MS); // the failed poll: no extension any more
      apiserver.write('/registry/secrets/default/still-coasting', Buffer.from('{"data":{}}'));
      await apiserver.advance(WRITE_STATE_TTL_MS);
      assert.throws(() => apiserver.write('/registry/secrets/default/late', Buffer.from('{"data":{}}')), /expired/);
      assert.ok((await apiserver.read(cached[0], cached[1])).data.length > 0, 'reads of cached seeds go on');
    } finally {
      await keyhold.operator.enableKey(KEY);
    }
    await eventually('plugin healthy', async () => (await plugin.client.status()).healthz === 'ok', 15_000);
    await apiserver.advance(POLL_HEALTHY_MS);
    assert.equal(apiserver.healthy, true, apiserver.lastProblem);
    apiserver.write('/registry/secrets/default/after', Buffer.from('{"data":{}}'));
  });

  void it('rewrite-secrets: refuses right after a rotation, then moves every Secret of a fake Kubernetes API to the new key_id (pages, conflicts, deletions) and only then says the old version can go', async () => {
    const kube: FakeKubeApi = await startFakeKubeApi(apiserver, { dir: keyhold.home });
    try {
      for (let i = 0; i < 23; i++) kube.create(`ns-${i % 4}`, `secret-${i}`, { token: Buffer.from(`value ${i}`).toString('base64') });
      await keyhold.operator.rotateKey(KEY);
      await waitPluginKeyId(plugin, 'kh-v3-');
      await apiserver.advance(POLL_HEALTHY_MS);
      const newKeyId = apiserver.currentKeyId;
      assert.match(newKeyId ?? '', /^kh-v3-/);
      assert.ok([...kube.store.values()].every((s) => storedKeyId(apiserver, s.value) !== newKeyId), 'all stored under older key_ids');

      const env = { ...pluginEnv(keyhold, KEY), PATH: process.env.PATH ?? '' };
      // Too early (the rotation is seconds old): refused with exit 3, nothing written. As a real process.
      const early = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, [join(REPO, 'apps/k8s-kms-plugin/dist/src/main.js'), 'rewrite-secrets', '--kubeconfig', kube.kubeconfigPath], { env });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        child.on('exit', (code) => resolve({ code, out }));
      });
      assert.equal(early.code, 3, early.out);
      assert.match(early.out, /Too early: kube-apiserver may still be writing with the previous key_id until/);
      assert.ok(!kube.requests.some((r) => r.startsWith('PUT')));

      // Ten minutes later (injected clock), with a writer racing it and a Secret deleted meanwhile.
      let pages = 0;
      kube.afterList = () => {
        pages += 1;
        if (pages === 1) {
          kube.touch('ns-0', 'secret-0'); // changed since the list: 409, re-read, rewritten
          kube.store.delete('ns-1/secret-1'); // gone: skipped
        }
      };
      const out: string[] = [];
      const progress: string[] = [];
      const code = await rewriteSecretsCommand(['--kubeconfig', kube.kubeconfigPath, '--page-size', '10'], {
        env,
        now: () => Date.now() + 10 * 60_000,
        out: (l) => out.push(l),
        progress: (l) => progress.push(l),
      });
      assert.equal(code, 0, out.join('\n'));
      assert.equal(progress.length, 3, 'one progress line per page of 10');
      assert.match(progress[2], /23 of 23 Secrets processed: 22 rewritten, 1 gone meanwhile, 0 failed/);
      assert.match(out.join('\n'), /Rewrote 22 Secrets/);
      assert.match(out.join('\n'), /Versions 1, 2 of k8s-harness are no longer needed by Secrets/);
      assert.ok(kube.requests.filter((r) => r === 'PUT /api/v1/namespaces/ns-0/secrets/secret-0').length === 2, 'the conflicting Secret was retried');
      for (const s of kube.store.values()) {
        assert.equal(storedKeyId(apiserver, s.value), newKeyId, `${s.namespace}/${s.name} moved to the new key_id`);
        const read = await apiserver.read(`/registry/secrets/${s.namespace}/${s.name}`, s.value);
        assert.equal(read.stale, false);
        assert.match(read.data.toString(), /"token"/);
      }
    } finally {
      await kube.close();
    }
  });
});
