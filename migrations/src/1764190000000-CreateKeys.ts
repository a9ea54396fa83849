import type { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateKeys1764190000000 implements MigrationInterface {
  name = 'CreateKeys1764190000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE keyhold_keys (
        id uuid PRIMARY KEY,
        name text NOT NULL,
        algorithm text NOT NULL,
        description text,
        state text NOT NULL,
        primary_version integer NOT NULL,
        min_decryption_version integer NOT NULL DEFAULT 1,
        rotation_period_days integer,
        next_rotation_at timestamptz,
        destroy_at timestamptz,
        labels jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        CONSTRAINT keyhold_keys_name_unique UNIQUE (name),
        CONSTRAINT keyhold_keys_state_check CHECK (state IN ('enabled', 'disabled', 'pending_destruction', 'destroyed')),
        CONSTRAINT keyhold_keys_rotation_period_check CHECK (rotation_period_days IS NULL OR rotation_period_days > 0)
      )`);
    await queryRunner.query(`COMMENT ON TABLE keyhold_keys IS
      'Named keys. A destroyed key stays as a tombstone so that its name is never reused.'`);
    await queryRunner.query(`
      CREATE TABLE keyhold_key_versions (
        key_id uuid NOT NULL REFERENCES keyhold_keys (id) ON DELETE RESTRICT,
        version integer NOT NULL,
        state text NOT NULL,
        wrapped_material bytea,
        master_key_version integer,
        created_at timestamptz NOT NULL,
        destroy_at timestamptz,
        destroyed_at timestamptz,
        encryptions bigint NOT NULL DEFAULT 0,
        last_used_at timestamptz,
        PRIMARY KEY (key_id, version),
        CONSTRAINT keyhold_key_versions_state_check CHECK (state IN ('enabled', 'disabled', 'pending_destruction', 'destroyed')),
        CONSTRAINT keyhold_key_versions_material_check CHECK ((state = 'destroyed') = (wrapped_material IS NULL))
      )`);
    await queryRunner.query(`COMMENT ON COLUMN keyhold_key_versions.wrapped_material IS
      'SECRET: key version material, only ever stored wrapped (AES-256-GCM) under the master key version in master_key_version, with AAD binding key id, version, algorithm and purpose. NULL once crypto-shredded.'`);
    await queryRunner.query(
      `CREATE INDEX keyhold_keys_next_rotation_idx ON keyhold_keys (next_rotation_at) WHERE state = 'enabled' AND next_rotation_at IS NOT NULL`,
    );
    await queryRunner.query(
      `CREATE INDEX keyhold_keys_destroy_at_idx ON keyhold_keys (destroy_at) WHERE state = 'pending_destruction'`,
    );
    await queryRunner.query(
      `CREATE INDEX keyhold_key_versions_destroy_at_idx ON keyhold_key_versions (destroy_at) WHERE state = 'pending_destruction'`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE keyhold_key_versions');
    await queryRunner.query('DROP TABLE keyhold_keys');
  }
}
