// Socket hygiene, SIGTERM drain, deadlines, the Status failure policy and Keyhold outages, against the
// real plugin process and a real Keyhold that the tests stop (SIGSTOP), kill (SIGKILL) and restart.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { type KeyholdFixture, sleep, startKeyhold } from './support/keyhold-fixture';
import { KmsClient, type PluginProcess, eventually, httpGet, pluginEnv, startPlugin } from './support/plugin-fixture';

const KEY = 'k8s-lifecycle';
const code = (error: unknown) => grpc.status[(error as grpc.ServiceError).code];
const socketIn = () => join(mkdtempSync(join(tmpdir(), 'kms-sock-')), 'kms.sock');

void describe('KMS v2 plugin: lifecycle, deadlines and Keyhold outages', () => {
  let keyhold: KeyholdFixture;
  let plugin: PluginProcess;
  const env = () => pluginEnv(keyhold, KEY, { KEYHOLD_KMS_UPSTREAM_TIMEOUT_MS: '1000', KEYHOLD_KMS_REFRESH_INTERVAL_SECONDS: '0.5' });

  before(async () => {
    keyhold = await startKeyhold({ pluginKeys: KEY });
    await keyhold.operator.createKey({ name: KEY, algorithm: 'aes-256-gcm' });
    plugin = await startPlugin(env());
    await eventually('healthy', async () => (await plugin.client.status()).healthz === 'ok');
  });

  after(async () => {
    keyhold?.signal('SIGCONT');
    await plugin?.stop();
    await keyhold?.close();
  });

  void it('T1: refuses abstract and relative socket addresses with a clear message', async () => {
    for (const listen of ['unix:///@keyhold-kms', 'unix://relative/kms.sock']) {
      const p = await startPlugin({ ...env(), KEYHOLD_KMS_LISTEN: listen }, { waitReady: false });
      const { code: exit } = await p.exited;
      assert.equal(exit, 1);
      assert.match(p.output(), listen.includes('@') ? /abstract unix sockets are not supported/ : /absolute path/);
    }
  });

  void it('T2: removes a stale socket file, refuses to take over a live one or to delete a non-socket', async () => {
    const path = socketIn();
    const first = await startPlugin(env(), { socketPath: path });
    // Another plugin on the same live socket: refused, the first one keeps serving.
    const second = await startPlugin(env(), { socketPath: path, waitReady: false });
    assert.equal((await second.exited).code, 1);
    assert.match(second.output(), /another process is serving/);
    assert.equal((await first.client.status()).version, 'v2');
    // Killed without cleanup: the socket file stays; the next start removes it and serves.
    first.child.kill('SIGKILL');
    await first.exited;
    first.client.close();
    assert.ok(existsSync(path), 'a SIGKILLed plugin leaves its socket file');
    const third = await startPlugin(env(), { socketPath: path });
    assert.match(third.output(), /removed a stale socket file/);
    assert.equal((await third.client.status()).version, 'v2');
    await third.stop();
    // A regular file where the socket should be: left alone.
    const filePath = socketIn();
    writeFileSync(filePath, 'not a socket');
    const fourth = await startPlugin(env(), { socketPath: filePath, waitReady: false });
    assert.equal((await fourth.exited).code, 1);
    assert.match(fourth.output(), /is not a socket; refusing to remove it/);
    assert.ok(existsSync(filePath));
  });

  void it('T6: SIGTERM lets in-flight RPCs finish, refuses new ones, removes the socket and exits 0', async () => {
    const path = socketIn();
    const p = await startPlugin({ ...env(), KEYHOLD_KMS_UPSTREAM_TIMEOUT_MS: '5000', KEYHOLD_KMS_DRAIN_TIMEOUT_MS: '8000' }, { socketPath: path });
    await eventually('healthy', async () => (await p.client.status()).healthz === 'ok');
    const seed = randomBytes(32);
    keyhold.signal('SIGSTOP'); // Keyhold hangs: the Encrypt below stays in flight
    try {
      const inFlight = p.client.encrypt(Buffer.from(seed), 'drain-uid', 8000);
      await sleep(300);
      p.child.kill('SIGTERM');
      await sleep(300);
      // Draining: the listener is closed (grpc-js closes it, Node unlinks the file): new calls are refused.
      const late = new KmsClient(path);
      await assert.rejects(late.status(1000), (e) => code(e) === 'UNAVAILABLE');
      late.close();
      assert.equal(p.child.exitCode, null, 'still running while the Encrypt is in flight');
      keyhold.signal('SIGCONT');
      const res = await inFlight;
      assert.ok(res.ciphertext.length > 0, 'the in-flight Encrypt completed');
      const exit = await p.exited;
      assert.deepEqual(exit, { code: 0, signal: null });
      assert.ok(!existsSync(path), 'the socket file is removed');
      assert.match(p.output(), /"msg":"draining"/);
      assert.match(p.output(), /"msg":"stopped","forced":false/);
    } finally {
      keyhold.signal('SIGCONT');
      p.client.close();
    }
    assert.deepEqual(await plugin.client.decrypt(await plugin.client.encrypt(Buffer.from(seed))), seed);
  });

  void it('S5, T7, O1: while Keyhold hangs, Status answers at once (degraded), Encrypt and Decrypt fail within their deadline; all recovers', async () => {
    const ok = await plugin.client.encrypt(randomBytes(32));
    keyhold.signal('SIGSTOP');
    try {
      // Status is served from the cache: with a 3 s deadline it never times out, and turns "not ok"
      // within refresh interval + upstream timeout (0.5 s + 1 s here).
      await eventually('degraded Status', async () => (await plugin.client.status(3000)).healthz !== 'ok', 10_000);
      const status = await plugin.client.status(3000);
      assert.match(status.healthz, /keyhold unreachable for \d+s: .*(timed out|did not answer)/);
      assert.equal(status.key_id, (await plugin.client.status()).key_id, 'the last known key_id is kept');
      const health = await httpGet(plugin.healthPort, '/healthz');
      assert.equal(health.status, 503);
      assert.match(health.body, /keyhold unreachable/);
      assert.equal((await httpGet(plugin.healthPort, '/livez')).status, 200, 'liveness does not restart the plugin for an outage');

      // A short client deadline: the plugin gives up on Keyhold first and answers DEADLINE_EXCEEDED itself.
      await assert.rejects(plugin.client.encrypt(randomBytes(32), 'deadline-uid', 400), (e) => code(e) === 'DEADLINE_EXCEEDED');
      await assert.rejects(plugin.client.decrypt(ok, 3000), (e) => ['DEADLINE_EXCEEDED', 'UNAVAILABLE'].includes(code(e)));
      await eventually(
        'the plugin counted its own DEADLINE_EXCEEDED answers',
        async () => /keyhold_kms_plugin_rpc_total\{method="Encrypt",code="DEADLINE_EXCEEDED"\} [1-9]/.test((await httpGet(plugin.healthPort, '/metrics')).body),
      );
    } finally {
      keyhold.signal('SIGCONT');
    }
    await eventually('healthy again', async () => (await plugin.client.status()).healthz === 'ok', 15_000);
    assert.equal((await plugin.client.decrypt(ok)).length, 32);
  });

  void it('O1: Keyhold killed and restarted: Encrypt fails fast, a plugin started meanwhile has no key_id yet, both recover without a restart', async () => {
    const before = await plugin.client.encrypt(randomBytes(32));
    await keyhold.kill();
    const t0 = Date.now();
    await assert.rejects(plugin.client.encrypt(randomBytes(32), 'outage-uid', 3000), (e) => code(e) === 'UNAVAILABLE');
    assert.ok(Date.now() - t0 < 2500, 'a refused connection is reported at once, not at the deadline');
    await eventually('degraded Status', async () => (await plugin.client.status()).healthz !== 'ok', 10_000);
    const late = await startPlugin(env());
    try {
      await assert.rejects(late.client.status(), (e) => code(e) === 'UNAVAILABLE' && /no key_id yet/.test((e as grpc.ServiceError).details));
      await keyhold.start();
      await eventually('first plugin healthy', async () => (await plugin.client.status()).healthz === 'ok', 20_000);
      await eventually('late plugin healthy', async () => (await late.client.status()).healthz === 'ok', 20_000);
      assert.equal((await late.client.status()).key_id, (await plugin.client.status()).key_id);
      assert.equal((await plugin.client.decrypt(before)).length, 32);
      assert.equal((await late.client.decrypt(before)).length, 32);
    } finally {
      await late.stop();
    }
  });

  void it('S2 policy: a key disabled in Keyhold makes Status a gRPC FAILED_PRECONDITION error (writes stop); enabling it heals', async () => {
    const res = await plugin.client.encrypt(randomBytes(32));
    await keyhold.operator.disableKey(KEY);
    try {
      await eventually('Status error', async () => {
        try {
          await plugin.client.status();
          return false;
        } catch (e) {
          return code(e) === 'FAILED_PRECONDITION' && /is disabled/.test((e as grpc.ServiceError).details);
        }
      });
      await assert.rejects(plugin.client.encrypt(randomBytes(32)), (e) => code(e) === 'FAILED_PRECONDITION');
      await assert.rejects(plugin.client.decrypt(res), (e) => code(e) === 'FAILED_PRECONDITION');
      assert.equal((await httpGet(plugin.healthPort, '/healthz')).status, 503);
    } finally {
      await keyhold.operator.enableKey(KEY);
    }
    await eventually('healthy again', async () => (await plugin.client.status()).healthz === 'ok');
    assert.equal((await plugin.client.decrypt(res)).length, 32);
  });

  void it('refuses to start on a socket folder it cannot create', async () => {
    const blocker = join(mkdtempSync(join(tmpdir(), 'kms-sock-')), 'file');
    writeFileSync(blocker, '');
    mkdirSync(join(blocker, '..', 'ok'), { recursive: true });
    const p = await startPlugin({ ...env(), KEYHOLD_KMS_LISTEN: `unix://${join(blocker, 'kms.sock')}` }, { waitReady: false });
    assert.equal((await p.exited).code, 1);
    assert.match(p.output(), /ENOTDIR|EEXIST|not a directory/);
  });
});
