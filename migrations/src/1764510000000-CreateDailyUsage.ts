import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Encryptions per key version per UTC day, next to the running totals on keyhold_key_versions: the console's
 * usage chart. Counts only: no key material, no context, no caller.
 */
export class CreateDailyUsage1764510000000 implements MigrationInterface {
  name = 'CreateDailyUsage1764510000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE keyhold_key_usage_daily (
        key_id uuid NOT NULL,
        version integer NOT NULL,
        day date NOT NULL,
        encryptions bigint NOT NULL,
        PRIMARY KEY (key_id, day, version),
        FOREIGN KEY (key_id, version) REFERENCES keyhold_key_versions (key_id, version) ON DELETE CASCADE
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE keyhold_key_usage_daily`);
  }
}
