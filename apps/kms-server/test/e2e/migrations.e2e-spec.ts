import 'reflect-metadata';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { DataSource } from 'typeorm';
import { KEYHOLD_MIGRATIONS } from '@keyhold/migrations';
import { createDataSource, openDatabase } from '../../src/database/data-source';
import { type TestDatabase, createTestDatabase } from '../support/test-database';

/** Everything the migrations define, as text that compares equal when the schema is the same. */
async function schemaOf(dataSource: DataSource): Promise<Record<string, string[]>> {
  const lines = async (sql: string) => ((await dataSource.query(sql)) as Array<{ line: string }>).map((row) => row.line);
  return {
    columns: await lines(`SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '') AS line
      FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, column_name`),
    indexes: await lines(`SELECT indexdef AS line FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname`),
    constraints: await lines(`SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) AS line
      FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY conrelid::regclass::text, conname`),
    triggers: await lines(`SELECT pg_get_triggerdef(oid) AS line FROM pg_trigger WHERE NOT tgisinternal ORDER BY tgname`),
    functions: await lines(`SELECT proname || '(' || pg_get_function_arguments(oid) || ')' AS line
      FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY proname`),
    comments: await lines(`SELECT c.relname || coalesce('.' || a.attname, '') || ': ' || d.description AS line
      FROM pg_description d JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass
      LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0
      WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1`),
  };
}

async function revert(dataSource: DataSource, count: number): Promise<void> {
  for (let step = 0; step < count; step += 1) await dataSource.undoLastMigration({ transaction: 'each' });
}

/**
 * Every migration can be rolled back: all of them down to an empty database, and up again to the same schema
 * (columns, indexes, constraints, triggers, functions, comments). Rows a later migration allows are mapped by its
 * `down` to what the earlier schema allows, not lost.
 */
describe('migrations: down and up again', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  before(async () => {
    database = await createTestDatabase();
    dataSource = await openDatabase(database.url);
  });
  after(async () => {
    await dataSource?.destroy();
    await database?.drop();
  });

  it('reverts every migration to an empty schema, and migrating again gives the same schema', async () => {
    const migrated = await schemaOf(dataSource);
    assert.ok(migrated.columns.length > 50, 'the schema is there');
    assert.ok(migrated.indexes.some((line) => line.includes('keyhold_webauthn_challenges_expires_at')), 'the latest migration ran');
    await revert(dataSource, KEYHOLD_MIGRATIONS.length);
    const [{ applied }] = await dataSource.query('SELECT count(*)::int AS applied FROM keyhold_migrations');
    assert.equal(applied, 0);
    const empty = await schemaOf(dataSource);
    // Only TypeORM's own bookkeeping table is left.
    assert.deepEqual(
      [...new Set(empty.columns.map((line) => line.split('.')[0]))],
      ['keyhold_migrations'],
    );
    assert.deepEqual([empty.triggers, empty.functions], [[], []]);
    await dataSource.runMigrations({ transaction: 'each' });
    assert.deepEqual(await schemaOf(dataSource), migrated);
  });

  it('rolling back the approval statuses keeps the operations: interrupted becomes executing, then failed', async () => {
    const adminId = randomUUID();
    await dataSource.query(`INSERT INTO keyhold_admins (id, name, role, webauthn_user_id, created_at) VALUES ($1, 'ops', 'admin', $2, now())`, [adminId, randomUUID()]);
    const operation = async (status: string) => {
      const id = randomUUID();
      await dataSource.query(
        `INSERT INTO keyhold_pending_operations (id, kind, canonical, challenge, requested_by, required_approvals, status, created_at, expires_at, decided_at, result, claimed_at)
         VALUES ($1, 'seal', '{}', $2, $3, 1, $4, now(), now() + interval '1 hour', CASE WHEN $4 = 'interrupted' THEN now() END,
                 CASE WHEN $4 = 'interrupted' THEN '{"interrupted":true}'::jsonb END, CASE WHEN $4 IN ('executing', 'interrupted') THEN now() END)`,
        [id, randomUUID(), adminId, status],
      );
      return id;
    };
    const interrupted = await operation('interrupted');
    const executing = await operation('executing');
    const pending = await operation('pending');
    const statusOf = async (id: string) => (await dataSource.query('SELECT status, decided_at, result FROM keyhold_pending_operations WHERE id = $1', [id]))[0];
    const names = KEYHOLD_MIGRATIONS.map((migration) => migration.name);
    const back = names.length - names.indexOf('ApprovalInterruptedStatus1764540000000');
    await revert(dataSource, back);
    assert.deepEqual(await statusOf(interrupted), { status: 'executing', decided_at: null, result: null });
    assert.equal((await statusOf(executing)).status, 'executing');
    await revert(dataSource, 1); // ApprovalExecutingStatus
    assert.equal((await statusOf(interrupted)).status, 'failed');
    assert.equal((await statusOf(executing)).status, 'failed');
    assert.equal((await statusOf(pending)).status, 'pending');
    await dataSource.runMigrations({ transaction: 'each' });
    const [{ count }] = await dataSource.query('SELECT count(*)::int AS count FROM keyhold_pending_operations');
    assert.equal(count, 3);
  });

  it("upgrading to audit retention lets kmsctl's existing read-only role read the prunes too", async () => {
    const reader = `keyhold_migration_reader_${randomUUID().slice(0, 8)}`;
    const names = KEYHOLD_MIGRATIONS.map((migration) => migration.name);
    await revert(dataSource, names.length - names.indexOf('CreateAuditPrunes1764570000000'));
    await dataSource.query(`CREATE ROLE ${reader} NOLOGIN`);
    try {
      await dataSource.query(`GRANT SELECT ON keyhold_audit_records, keyhold_audit_checkpoints, keyhold_audit_chain_head TO ${reader}`);
      await dataSource.runMigrations({ transaction: 'each' });
      const [{ granted }] = await dataSource.query(`SELECT has_table_privilege($1, 'keyhold_audit_prunes', 'SELECT') AS granted`, [reader]);
      assert.equal(granted, true);
    } finally {
      await dataSource.query(`DROP OWNED BY ${reader}`);
      await dataSource.query(`DROP ROLE ${reader}`);
    }
  });

  it('a database created by another instance is migrated once: a second data source finds nothing to do', async () => {
    const second = createDataSource(database.url);
    await second.initialize();
    try {
      assert.equal(await second.showMigrations(), false);
    } finally {
      await second.destroy();
    }
  });
});
