import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `claimed_at`: when the approval that completed the quorum claimed the operation (status `executing`); and
 * `interrupted`: an operation whose run a crash cut short, closed by an admin once it has been `executing` far longer
 * than any run takes. It never runs again; whether its effect took place is for the admin to check.
 */
export class ApprovalInterruptedStatus1764540000000 implements MigrationInterface {
  name = 'ApprovalInterruptedStatus1764540000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE keyhold_pending_operations ADD COLUMN claimed_at timestamptz');
    // Operations claimed before the column existed: the claim was made with the approval that completed the quorum,
    // so with the latest approval (the creation time if, somehow, there is none).
    await queryRunner.query(`UPDATE keyhold_pending_operations o
      SET claimed_at = COALESCE((SELECT max(a.approved_at) FROM keyhold_approvals a WHERE a.operation_id = o.id), o.created_at)
      WHERE o.status = 'executing'`);
    await queryRunner.query('ALTER TABLE keyhold_pending_operations DROP CONSTRAINT keyhold_pending_operations_status_check');
    await queryRunner.query(`ALTER TABLE keyhold_pending_operations ADD CONSTRAINT keyhold_pending_operations_status_check
      CHECK (status IN ('pending', 'executing', 'executed', 'rejected', 'expired', 'failed', 'interrupted'))`);
    await queryRunner.query(`ALTER TABLE keyhold_pending_operations ADD CONSTRAINT keyhold_pending_operations_claimed_check
      CHECK (status NOT IN ('executing', 'interrupted') OR claimed_at IS NOT NULL)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    // Before this migration an interrupted run stayed `executing`: what an interrupted operation was, unclosed.
    await queryRunner.query(`UPDATE keyhold_pending_operations SET status = 'executing', decided_at = NULL, result = NULL WHERE status = 'interrupted'`);
    await queryRunner.query('ALTER TABLE keyhold_pending_operations DROP CONSTRAINT keyhold_pending_operations_claimed_check');
    await queryRunner.query('ALTER TABLE keyhold_pending_operations DROP CONSTRAINT keyhold_pending_operations_status_check');
    await queryRunner.query(`ALTER TABLE keyhold_pending_operations ADD CONSTRAINT keyhold_pending_operations_status_check
      CHECK (status IN ('pending', 'executing', 'executed', 'rejected', 'expired', 'failed'))`);
    await queryRunner.query('ALTER TABLE keyhold_pending_operations DROP COLUMN claimed_at');
  }
}
