import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Retention offers the latest checkpoints older than the minimum retention (GET /api/v1/audit/retention): found from
 * the cutoff backwards by time, rather than by walking every younger checkpoint (one every 10 000 records).
 */
export class IndexAuditCheckpointTime1764580000000 implements MigrationInterface {
  name = 'IndexAuditCheckpointTime1764580000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('CREATE INDEX keyhold_audit_checkpoints_time ON keyhold_audit_checkpoints (time)');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP INDEX keyhold_audit_checkpoints_time');
  }
}
