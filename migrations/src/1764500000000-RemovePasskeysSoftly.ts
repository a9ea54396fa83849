import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Passkeys are removed by marking them, not by deleting the row: an approval keeps a reference to the passkey
 * that signed it (the record of who approved what must stay), and a lost passkey must stop signing in even
 * when it has signed approvals.
 */
export class RemovePasskeysSoftly1764500000000 implements MigrationInterface {
  name = 'RemovePasskeysSoftly1764500000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE keyhold_passkeys ADD COLUMN removed_at timestamptz`);
    await queryRunner.query(`CREATE INDEX keyhold_passkeys_active_idx ON keyhold_passkeys (admin_id) WHERE removed_at IS NULL`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX keyhold_passkeys_active_idx`);
    await queryRunner.query(`ALTER TABLE keyhold_passkeys DROP COLUMN removed_at`);
  }
}
