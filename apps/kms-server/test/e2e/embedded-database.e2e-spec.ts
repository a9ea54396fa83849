import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import request from 'supertest';
import { developmentPaths } from '../../src/config/keyhold-config';
import { type EmbeddedDatabase, startEmbeddedDatabase } from '../../src/database/embedded-database';
import { createTestDatabase } from '../support/test-database';
import { freePort } from '../support/test-keyhold';

const SERVER_MAIN = resolve(__dirname, '../../src/main.js');

describe('embedded Postgres (npm start without DATABASE_URL): its defaults', () => {
  const home = mkdtempSync(join(tmpdir(), 'keyhold-embedded-'));
  let database: EmbeddedDatabase;
  let port = 0;

  before(async () => {
    port = await freePort();
    database = await startEmbeddedDatabase(home, port);
  });
  after(async () => {
    await database?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it('asks for the password by SCRAM, never in the clear, and refuses a wrong one', async () => {
    const rules = readFileSync(join(home, 'postgres', 'pg_hba.conf'), 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '' && !line.startsWith('#'));
    assert.ok(rules.length > 0);
    for (const rule of rules) assert.match(rule, /\sscram-sha-256$/, rule);
    const client = new Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query(`SELECT current_setting('unix_socket_directories') AS sockets, current_setting('password_encryption') AS stored`);
      assert.deepEqual(rows[0], { sockets: '', stored: 'scram-sha-256' });
    } finally {
      await client.end();
    }
    const wrong = new URL(database.url);
    wrong.password = 'not-the-password';
    await assert.rejects(new Client({ connectionString: wrong.toString() }).connect(), /password authentication failed/);
  });

  it('opens no Unix socket, and keeps its password in an owner-only file', () => {
    assert.equal(existsSync(`/tmp/.s.PGSQL.${port}`), false);
    assert.equal(statSync(join(home, 'postgres-password')).mode & 0o777, 0o600);
    assert.match(database.url, new RegExp(`^postgres://keyhold:[^@]+@127\\.0\\.0\\.1:${port}/keyhold$`));
  });
});

/**
 * A real Keyhold process stopped with SIGTERM right after five encryptions, whose usage counts (written every few
 * seconds) are still in memory then: it must write them, and everything else, before its database goes.
 */
async function stopWithSigterm(home: string, database: { url?: string; embeddedPort?: number }): Promise<string> {
  const [servicePort, adminPort] = [await freePort(), await freePort()];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: 'development',
    KEYHOLD_HOME: home,
    KEYHOLD_SERVICE_PORT: String(servicePort),
    KEYHOLD_ADMIN_PORT: String(adminPort),
    KEYHOLD_LOG_LEVEL: 'warn',
  };
  delete env.DATABASE_URL;
  if (database.url) env.DATABASE_URL = database.url;
  if (database.embeddedPort) env.KEYHOLD_EMBEDDED_POSTGRES_PORT = String(database.embeddedPort);
  const child = spawn(process.execPath, [SERVER_MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk) => (output += String(chunk)));
  child.stderr.on('data', (chunk) => (output += String(chunk)));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  try {
    const service = (method: 'get' | 'post', path: string) => {
      const paths = developmentPaths(home);
      const tls = { ca: readFileSync(paths.caCert), cert: readFileSync(paths.operatorCert), key: readFileSync(paths.operatorKey) };
      return request(`https://localhost:${servicePort}`)[method](path).ca(tls.ca).cert(tls.cert).key(tls.key);
    };
    for (let attempt = 0; ; attempt += 1) {
      assert.ok(attempt < 600 && child.exitCode === null, `Keyhold did not become healthy:\n${output}`);
      try {
        if ((await service('get', '/v1/health')).status === 200) break;
      } catch {
        // not listening yet, or its certificates not written yet
      }
      await new Promise((done) => setTimeout(done, 100));
    }
    await service('post', '/v1/keys').send({ name: 'counted', algorithm: 'aes-256-gcm' }).expect(201);
    for (let call = 0; call < 5; call += 1) await service('post', '/v1/keys/counted/encrypt').send({ plaintext: 'aGk=' }).expect(200);
    child.kill('SIGTERM');
    // 0 is Keyhold's own shutdown; async-exit-hook, had it answered the signal, would have ended it with 143.
    assert.equal(await exited, 0, output);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  assert.doesNotMatch(output, /not flushed|connection lost|terminating connection/, output);
  return output;
}

/** The encryptions with key `counted` that the database at `url` has counted. */
async function countedEncryptions(url: string): Promise<number> {
  const client = new Client({ connectionString: url });
  try {
    await client.connect();
    const { rows } = await client.query(
      `SELECT sum(u.encryptions)::int AS encryptions FROM keyhold_key_usage_daily u JOIN keyhold_keys k ON k.id = u.key_id WHERE k.name = 'counted'`,
    );
    return rows[0].encryptions;
  } finally {
    await client.end();
  }
}

describe('SIGTERM: Keyhold writes what it still holds, then stops (its database last)', () => {
  const home = mkdtempSync(join(tmpdir(), 'keyhold-stop-'));
  after(() => rmSync(home, { recursive: true, force: true }));

  it('on the embedded Postgres (npm start)', async () => {
    const embeddedHome = join(home, 'embedded');
    const port = await freePort();
    await stopWithSigterm(embeddedHome, { embeddedPort: port });
    const database = await startEmbeddedDatabase(embeddedHome, port);
    try {
      assert.equal(await countedEncryptions(database.url), 5);
    } finally {
      await database.stop();
    }
  });

  it('on a DATABASE_URL (embedded-postgres loaded but unused: it used to end the process at the signal)', async () => {
    const database = await createTestDatabase();
    try {
      await stopWithSigterm(join(home, 'database-url'), { url: database.url });
      assert.equal(await countedEncryptions(database.url), 5);
    } finally {
      await database.drop();
    }
  });
});
