import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Sensitive operations waiting for approvals, the approvals themselves, and admin-plane settings (quorum). */
export class CreateApprovals1764220000000 implements MigrationInterface {
  name = 'CreateApprovals1764220000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE keyhold_settings (
        name text PRIMARY KEY,
        value jsonb NOT NULL,
        updated_at timestamptz NOT NULL
      )`);
    await queryRunner.query(`
      CREATE TABLE keyhold_pending_operations (
        id uuid PRIMARY KEY,
        kind text NOT NULL,
        canonical text NOT NULL,
        challenge text NOT NULL UNIQUE,
        requested_by uuid NOT NULL REFERENCES keyhold_admins (id),
        required_approvals integer NOT NULL CHECK (required_approvals >= 1),
        status text NOT NULL CHECK (status IN ('pending', 'executed', 'rejected', 'expired', 'failed')),
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        decided_at timestamptz,
        result jsonb
      )`);
    await queryRunner.query(`COMMENT ON COLUMN keyhold_pending_operations.canonical IS
      'The exact operation (what, which key or admin, parameters, requester, expiry) as canonical JSON; its hash is the WebAuthn challenge every approval signs'`);
    await queryRunner.query(`
      CREATE TABLE keyhold_approvals (
        operation_id uuid NOT NULL REFERENCES keyhold_pending_operations (id),
        admin_id uuid NOT NULL REFERENCES keyhold_admins (id),
        passkey_id uuid NOT NULL REFERENCES keyhold_passkeys (id),
        approved_at timestamptz NOT NULL,
        PRIMARY KEY (operation_id, admin_id)
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE keyhold_approvals');
    await queryRunner.query('DROP TABLE keyhold_pending_operations');
    await queryRunner.query('DROP TABLE keyhold_settings');
  }
}
