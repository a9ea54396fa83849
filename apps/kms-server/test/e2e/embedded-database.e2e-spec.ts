import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import { type EmbeddedDatabase, startEmbeddedDatabase } from '../../src/database/embedded-database';
import { freePort } from '../support/test-keyhold';

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
