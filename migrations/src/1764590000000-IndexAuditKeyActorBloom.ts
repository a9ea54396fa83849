import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The audit records' key and actor filters through one BRIN bloom index instead of two B-trees (docs/audit.md, "Where
 * the audit's cost goes, split"). Every group commit inserted each record into both B-trees, and that was a large
 * share of Postgres's work per record; a BRIN index costs nothing while its newest range fills and is summarised
 * once per range afterwards (`autosummarize`). A filter on a key or an actor then reads only the ranges whose bloom
 * filter may hold it, plus the newest, still unsummarised ones.
 */
export class IndexAuditKeyActorBloom1764590000000 implements MigrationInterface {
  name = 'IndexAuditKeyActorBloom1764590000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP INDEX keyhold_audit_records_key');
    await queryRunner.query('DROP INDEX keyhold_audit_records_actor');
    // 32 pages (about 750 records) per range: a rare key costs a read of a few such ranges, not of 1 MB ones.
    await queryRunner.query(`CREATE INDEX keyhold_audit_records_key_actor ON keyhold_audit_records
      USING brin (key_name text_bloom_ops, actor text_bloom_ops) WITH (pages_per_range = 32, autosummarize = on)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP INDEX keyhold_audit_records_key_actor');
    await queryRunner.query('CREATE INDEX keyhold_audit_records_key ON keyhold_audit_records (key_name, sequence)');
    await queryRunner.query('CREATE INDEX keyhold_audit_records_actor ON keyhold_audit_records (actor, sequence)');
  }
}
