import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Administrators, their passkeys and sessions, enrolment tokens, recovery codes and WebAuthn challenges. */
export class CreateAdminPlane1764200000000 implements MigrationInterface {
  name = 'CreateAdminPlane1764200000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE keyhold_admins (
        id uuid PRIMARY KEY,
        name text NOT NULL,
        role text NOT NULL CHECK (role IN ('admin', 'operator', 'auditor')),
        webauthn_user_id text NOT NULL UNIQUE,
        created_at timestamptz NOT NULL,
        removed_at timestamptz
      )`);
    await queryRunner.query(`
      CREATE TABLE keyhold_passkeys (
        id uuid PRIMARY KEY,
        admin_id uuid NOT NULL REFERENCES keyhold_admins (id),
        credential_id text NOT NULL UNIQUE,
        public_key bytea NOT NULL,
        counter bigint NOT NULL DEFAULT 0,
        transports text[] NOT NULL DEFAULT '{}',
        name text NOT NULL,
        created_at timestamptz NOT NULL,
        last_used_at timestamptz,
        counter_regressions integer NOT NULL DEFAULT 0
      )`);
    await queryRunner.query(`COMMENT ON COLUMN keyhold_passkeys.public_key IS 'COSE public key of the passkey: public, not secret'`);
    await queryRunner.query(`
      CREATE TABLE keyhold_webauthn_challenges (
        challenge text PRIMARY KEY,
        purpose text NOT NULL,
        data jsonb NOT NULL DEFAULT '{}'::jsonb,
        expires_at timestamptz NOT NULL,
        consumed_at timestamptz
      )`);
    await queryRunner.query(`
      CREATE TABLE keyhold_enrolment_tokens (
        id text PRIMARY KEY,
        kind text NOT NULL CHECK (kind IN ('setup', 'invitation', 'recovery')),
        secret_hash text NOT NULL,
        role text NOT NULL CHECK (role IN ('admin', 'operator', 'auditor')),
        name text,
        admin_id uuid REFERENCES keyhold_admins (id),
        created_by uuid REFERENCES keyhold_admins (id),
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        used_at timestamptz,
        used_by uuid REFERENCES keyhold_admins (id)
      )`);
    await queryRunner.query(`COMMENT ON COLUMN keyhold_enrolment_tokens.secret_hash IS 'SECRET (hashed): Argon2id hash of the token secret; the token itself is never stored'`);
    await queryRunner.query(`
      CREATE TABLE keyhold_recovery_codes (
        id uuid PRIMARY KEY,
        admin_id uuid NOT NULL REFERENCES keyhold_admins (id),
        code_hash text NOT NULL,
        created_at timestamptz NOT NULL,
        used_at timestamptz
      )`);
    await queryRunner.query(`COMMENT ON COLUMN keyhold_recovery_codes.code_hash IS 'SECRET (hashed): Argon2id hash of a recovery code'`);
    await queryRunner.query(`
      CREATE TABLE keyhold_admin_sessions (
        id text PRIMARY KEY,
        secret_hash text NOT NULL,
        admin_id uuid NOT NULL REFERENCES keyhold_admins (id),
        created_at timestamptz NOT NULL,
        last_seen_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        revoked_at timestamptz,
        source_address text,
        user_agent text
      )`);
    await queryRunner.query(`COMMENT ON COLUMN keyhold_admin_sessions.secret_hash IS 'SECRET (hashed): Argon2id hash of the session secret'`);
    await queryRunner.query(`CREATE INDEX keyhold_admin_sessions_admin_idx ON keyhold_admin_sessions (admin_id) WHERE revoked_at IS NULL`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of [
      'keyhold_admin_sessions',
      'keyhold_recovery_codes',
      'keyhold_enrolment_tokens',
      'keyhold_webauthn_challenges',
      'keyhold_passkeys',
      'keyhold_admins',
    ]) {
      await queryRunner.query(`DROP TABLE ${table}`);
    }
  }
}
