import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Every table storing something wrapped or sealed under a master-key version, in a master_key_version column. */
const SEALED_TABLES = ['keyhold_key_versions', 'keyhold_certificate_authority', 'keyhold_audit_keys'];

/**
 * Master-key versions. Version 1 is the root of trust itself (what the sealer yields: the development file,
 * the passphrase-sealed file, the Shamir shares or the PKCS#11-wrapped file), so material written before
 * rotation existed keeps opening. Versions 2+ are random keys sealed under the root and kept here; retiring
 * a version deletes its sealed key. A trigger refuses to write material under a retired or unknown version,
 * so a retirement racing an instance that has not heard of the rotation yet cannot strand a row.
 */
export class CreateMasterKeyVersions1764400000000 implements MigrationInterface {
  name = 'CreateMasterKeyVersions1764400000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE keyhold_master_key_versions (
        version integer PRIMARY KEY CHECK (version >= 1),
        sealed_key bytea,
        state text NOT NULL CHECK (state IN ('active', 'retiring', 'retired')),
        created_at timestamptz NOT NULL,
        retired_at timestamptz,
        CONSTRAINT keyhold_master_key_versions_retired_check CHECK ((state = 'retired') = (retired_at IS NOT NULL)),
        CONSTRAINT keyhold_master_key_versions_sealed_check CHECK (state <> 'retired' OR sealed_key IS NULL)
      )`);
    await queryRunner.query(`COMMENT ON COLUMN keyhold_master_key_versions.sealed_key IS
      'SECRET: the 32-byte master key of this version, only ever stored sealed (AES-256-GCM) under the root master key. NULL for version 1 (the root itself) and once retired.'`);
    // Exactly one version wraps new material.
    await queryRunner.query(`CREATE UNIQUE INDEX keyhold_master_key_versions_one_active ON keyhold_master_key_versions ((true)) WHERE state = 'active'`);
    await queryRunner.query(`INSERT INTO keyhold_master_key_versions (version, sealed_key, state, created_at) VALUES (1, NULL, 'active', now())`);
    // KEY SHARE: conflicts with the retirement's FOR UPDATE (so one waits for the other) but not with rotation's
    // plain UPDATE of the state, so creating keys never waits on a rotation.
    await queryRunner.query(`
      CREATE FUNCTION keyhold_require_live_master_key_version() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        found_state text;
      BEGIN
        SELECT state INTO found_state FROM keyhold_master_key_versions WHERE version = NEW.master_key_version FOR KEY SHARE;
        IF found_state IS NULL OR found_state = 'retired' THEN
          RAISE EXCEPTION 'master key version % is not live', NEW.master_key_version USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
      END $$`);
    for (const table of SEALED_TABLES) {
      // The audit trail's sealed keys come from a migration of their own; guarded once that table exists.
      const [{ exists }] = await queryRunner.query(`SELECT to_regclass($1) IS NOT NULL AS exists`, [table]);
      if (!exists) continue;
      await queryRunner.query(`
        CREATE TRIGGER ${table}_live_master_key_version BEFORE INSERT OR UPDATE OF master_key_version ON ${table}
        FOR EACH ROW WHEN (NEW.master_key_version IS NOT NULL) EXECUTE FUNCTION keyhold_require_live_master_key_version()`);
    }
    // The rewrap looks for rows under older versions.
    await queryRunner.query(
      `CREATE INDEX keyhold_key_versions_master_key_version_idx ON keyhold_key_versions (master_key_version) WHERE wrapped_material IS NOT NULL`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP INDEX keyhold_key_versions_master_key_version_idx');
    for (const table of SEALED_TABLES) {
      const [{ exists }] = await queryRunner.query(`SELECT to_regclass($1) IS NOT NULL AS exists`, [table]);
      if (exists) await queryRunner.query(`DROP TRIGGER IF EXISTS ${table}_live_master_key_version ON ${table}`);
    }
    await queryRunner.query('DROP FUNCTION keyhold_require_live_master_key_version()');
    await queryRunner.query('DROP TABLE keyhold_master_key_versions');
  }
}
