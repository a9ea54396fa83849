import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { developmentPaths } from '../../src/config/keyhold-config';
import { loadDevelopmentMasterKey } from '../../src/seal/master-key-files';
import type { InMemoryMasterKey } from '../../src/seal/master-key';
import { type TestDatabase, createTestDatabase } from '../support/test-database';
import { type TestKeyhold, freePort, startTestKeyhold } from '../support/test-keyhold';

const SERVER_MAIN = resolve(__dirname, '../../src/main.js');
const KEYS = 30;

interface RealServer {
  child: ChildProcess;
  output: () => string;
  exited: Promise<unknown>;
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/**
 * A real Keyhold process (apps/kms-server/dist/src/main.js) on the test database, with its development files in
 * `home`, rewrapping one row per batch with a pause between batches so that a test can kill it mid-rewrap.
 */
function startRealServer(home: string, databaseUrl: string, ports: { service: number; admin: number }): RealServer {
  const child = spawn(process.execPath, [SERVER_MAIN], {
    env: {
      ...process.env,
      NODE_ENV: 'development',
      KEYHOLD_HOME: home,
      DATABASE_URL: databaseUrl,
      KEYHOLD_SERVICE_PORT: String(ports.service),
      KEYHOLD_ADMIN_PORT: String(ports.admin),
      KEYHOLD_LOG_LEVEL: 'warn',
      KEYHOLD_MASTER_KEY_REWRAP_BATCH_SIZE: '1',
      KEYHOLD_MASTER_KEY_REWRAP_PACE_MS: '100',
      KEYHOLD_MASTER_KEY_REWRAP_INTERVAL_SECONDS: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout?.on('data', (chunk) => (text = (text + String(chunk)).slice(-20_000)));
  child.stderr?.on('data', (chunk) => (text = (text + String(chunk)).slice(-20_000)));
  const exited = new Promise((done) => child.on('exit', done));
  return { child, output: () => text, exited };
}

function serviceClient(home: string, port: number) {
  const paths = developmentPaths(home);
  const tls = { ca: readFileSync(paths.caCert), cert: readFileSync(paths.operatorCert), key: readFileSync(paths.operatorKey) };
  const agent = request(`https://localhost:${port}`);
  return {
    get: (path: string) => agent.get(path).ca(tls.ca).cert(tls.cert).key(tls.key),
    post: (path: string) => agent.post(path).ca(tls.ca).cert(tls.cert).key(tls.key),
  };
}

async function waitHealthy(server: RealServer, home: string, port: number): Promise<void> {
  for (let attempt = 0; attempt < 600; attempt += 1) {
    if (server.child.exitCode !== null) assert.fail(`the server exited during start-up:\n${server.output()}`);
    try {
      if ((await serviceClient(home, port).get('/v1/health')).status === 200) return;
    } catch {
      // certificates not written yet, or not listening yet
    }
    await sleep(100);
  }
  assert.fail(`the server never became healthy:\n${server.output()}`);
}

describe('kill -9 in the middle of a master-key rewrap', () => {
  const home = mkdtempSync(join(tmpdir(), 'keyhold-rewrap-crash-'));
  let database: TestDatabase;
  let root: InMemoryMasterKey;
  let control: TestKeyhold;
  let server: RealServer | null = null;
  const ports = { service: 0, admin: 0 };
  const ciphertexts: Array<{ ciphertext: string; plaintext: string }> = [];

  const countUnder = async (version: number): Promise<number> =>
    (await control.dataSource.query(`SELECT count(*)::int AS n FROM keyhold_key_versions WHERE master_key_version = $1`, [version]))[0].n;
  /** Every target: key versions, the CA key and the audit keys. */
  const allUnder = async (version: number): Promise<number> =>
    (await countUnder(version)) +
    (await control.dataSource.query(`SELECT count(*)::int AS n FROM keyhold_certificate_authority WHERE master_key_version = $1`, [version]))[0].n +
    (await control.dataSource.query(`SELECT count(*)::int AS n FROM keyhold_audit_keys WHERE master_key_version = $1`, [version]))[0].n;

  before(async () => {
    database = await createTestDatabase();
    ports.service = await freePort();
    ports.admin = await freePort();
    server = startRealServer(home, database.url, ports);
    await waitHealthy(server, home, ports.service);
    // The test's own instance on the same database and root: it makes the keys and the rotation, the real
    // process (whose background work is on) does the rewrap.
    root = loadDevelopmentMasterKey(developmentPaths(home).masterKey) as InMemoryMasterKey;
    control = await startTestKeyhold({ databaseUrl: database.url, masterKey: root });
    for (let index = 0; index < KEYS; index += 1) {
      const name = `crash-${index}`;
      await control.http().post('/v1/keys').send({ name, algorithm: 'aes-256-gcm' }).expect(201);
      await control.http().post(`/v1/keys/${name}/rotate`).expect(200);
      const plaintext = Buffer.from(`secret number ${index}`).toString('base64');
      const encrypted = await control.http().post(`/v1/keys/${name}/encrypt`).send({ plaintext }).expect(200);
      ciphertexts.push({ ciphertext: encrypted.body.ciphertext, plaintext });
    }
  });
  after(async () => {
    if (server && server.child.exitCode === null) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    await control?.stop();
    await database?.drop();
    rmSync(home, { recursive: true, force: true });
  });

  it('leaves every row whole under one version or the other; a restart finishes the rewrap and everything decrypts', async () => {
    const live = server as RealServer;
    assert.equal(await countUnder(1), KEYS * 2);
    const rotated = await control.server.masterKey.service.rotate();
    assert.equal(rotated.version, 2);

    // The real server hears the rotation (NOTIFY) and rewraps one row every ~100 ms: catch it half way.
    for (let attempt = 0; attempt < 800 && (await countUnder(2)) < 5; attempt += 1) await sleep(25);
    const moved = await countUnder(2);
    assert.ok(moved >= 5 && moved < KEYS * 2, `caught ${moved} of ${KEYS * 2} rows rewrapped`);
    live.child.kill('SIGKILL');
    await live.exited;

    const [{ total, under1, under2 }] = await control.dataSource.query(
      `SELECT count(*)::int AS total, count(*) FILTER (WHERE master_key_version = 1)::int AS under1,
              count(*) FILTER (WHERE master_key_version = 2)::int AS under2
         FROM keyhold_key_versions`,
    );
    assert.equal(total, KEYS * 2);
    assert.ok(under1 > 0 && under2 > 0, `a half-done rewrap: ${under1} under version 1, ${under2} under version 2`);
    assert.equal(under1 + under2, total, 'every row is under version 1 or version 2');
    // Mid-rewrap, every row still opens (through the control instance, from the database).
    control.server.cache.clear();
    for (const { ciphertext, plaintext } of ciphertexts) {
      assert.equal((await control.http().post('/v1/decrypt').send({ ciphertext }).expect(200)).body.plaintext, plaintext);
    }

    server = startRealServer(home, database.url, ports);
    await waitHealthy(server, home, ports.service);
    for (let attempt = 0; attempt < 600 && (await allUnder(1)) > 0; attempt += 1) await sleep(50);
    assert.equal(await allUnder(1), 0, `the restarted server did not finish the rewrap:\n${server.output()}`);
    const [ca] = await control.dataSource.query(`SELECT master_key_version FROM keyhold_certificate_authority`);
    assert.equal(ca.master_key_version, 2);

    const client = serviceClient(home, ports.service);
    for (const { ciphertext, plaintext } of ciphertexts) {
      const decrypted = await client.post('/v1/decrypt').send({ ciphertext });
      assert.equal(decrypted.status, 200, decrypted.text);
      assert.equal(decrypted.body.plaintext, plaintext);
    }
    await control.server.masterKey.service.retire(1);
  });
});
