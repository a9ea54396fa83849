import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `executing`: an approved operation claimed, in the approval's transaction, before it runs; so an approval that
 * cannot be recorded runs nothing, and an operation is never approved, and run, twice.
 */
export class ApprovalExecutingStatus1764530000000 implements MigrationInterface {
  name = 'ApprovalExecutingStatus1764530000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE keyhold_pending_operations DROP CONSTRAINT keyhold_pending_operations_status_check');
    await queryRunner.query(`ALTER TABLE keyhold_pending_operations ADD CONSTRAINT keyhold_pending_operations_status_check
      CHECK (status IN ('pending', 'executing', 'executed', 'rejected', 'expired', 'failed'))`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`UPDATE keyhold_pending_operations SET status = 'failed' WHERE status = 'executing'`);
    await queryRunner.query('ALTER TABLE keyhold_pending_operations DROP CONSTRAINT keyhold_pending_operations_status_check');
    await queryRunner.query(`ALTER TABLE keyhold_pending_operations ADD CONSTRAINT keyhold_pending_operations_status_check
      CHECK (status IN ('pending', 'executed', 'rejected', 'expired', 'failed'))`);
  }
}
