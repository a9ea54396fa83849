import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * One active administrator per name (case aside): recovery finds an administrator by name, and approvals and the
 * audit trail show names, so two "alice"s would let one stand in for the other. Existing duplicates keep the
 * oldest under the name; later ones get a numbered suffix.
 */
export class UniqueAdminNames1764550000000 implements MigrationInterface {
  name = 'UniqueAdminNames1764550000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`UPDATE keyhold_admins a SET name = a.name || ' (' || d.rank || ')'
      FROM (SELECT id, row_number() OVER (PARTITION BY lower(name) ORDER BY created_at, id) AS rank FROM keyhold_admins WHERE removed_at IS NULL) d
      WHERE a.id = d.id AND d.rank > 1`);
    await queryRunner.query('CREATE UNIQUE INDEX keyhold_admins_active_name ON keyhold_admins (lower(name)) WHERE removed_at IS NULL');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP INDEX keyhold_admins_active_name');
  }
}
