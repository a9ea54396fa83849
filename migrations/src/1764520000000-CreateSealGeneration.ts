import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The seal generation: every approved seal advances it (and NOTIFYs). An instance that was cut off from
 * Postgres when the NOTIFY went out sees a newer generation when it reconnects, and seals then.
 */
export class CreateSealGeneration1764520000000 implements MigrationInterface {
  name = 'CreateSealGeneration1764520000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE keyhold_seal_generation (
        id smallint PRIMARY KEY CHECK (id = 1),
        generation bigint NOT NULL,
        sealed_at timestamptz
      )`);
    await queryRunner.query(`INSERT INTO keyhold_seal_generation (id, generation) VALUES (1, 0)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE keyhold_seal_generation`);
  }
}
