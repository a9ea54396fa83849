import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { randomToken } from '@keyhold/crypto-core';
import type { TestKeyhold } from './test-keyhold';

export interface AuditReader {
  /** A connection URL for the role: KEYHOLD_AUDIT_DATABASE_URL for kmsctl. */
  url: string;
  /** The role's name, to take a grant away in a test. */
  role: string;
  /** The audit public key, saved from the admin API (never from the database being checked). */
  publicKeyFile: string;
  /** Drops the role; call it after the server stopped (from a connection of its own). */
  drop(): Promise<void>;
}

/**
 * What `kmsctl audit` is given in production (docs/audit.md): a role that can only read the audit tables (and only
 * the public column of the keys), and the public key from the admin API, read with an auditor's (or admin's) session.
 */
export async function createAuditReader(kh: TestKeyhold, session: { cookie: string; csrfToken: string }, dir: string): Promise<AuditReader> {
  const role = `keyhold_audit_reader_${randomToken(4).toLowerCase().replace(/[^a-z0-9]/g, 'x')}`;
  const password = randomToken(18);
  await kh.dataSource.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
  await kh.dataSource.query(`GRANT SELECT ON keyhold_audit_records, keyhold_audit_checkpoints, keyhold_audit_chain_head, keyhold_audit_prunes TO ${role}`);
  await kh.dataSource.query(`GRANT SELECT (purpose, public_key) ON keyhold_audit_keys TO ${role}`);
  const url = new URL(kh.database.url);
  url.username = role;
  url.password = password;
  const key = await kh.adminHttp(session).get('/api/v1/audit/public-key').expect(200);
  const publicKeyFile = join(dir, 'audit-public-key.pem');
  writeFileSync(publicKeyFile, key.body.publicKeyPem);
  return {
    url: url.toString(),
    role,
    publicKeyFile,
    async drop() {
      const client = new Client({ connectionString: process.env.KEYHOLD_TEST_DATABASE_URL });
      await client.connect();
      await client.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
      await client.end();
    },
  };
}
