import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Audit retention (docs/audit.md): each prune removes the records through a signed checkpoint and leaves a
 * statement signed with the checkpoint key, under its own domain, that the chain now starts after that record
 * and continues from its hash. Verification accepts a chain that starts after sequence 1 only on such a statement.
 */
export class CreateAuditPrunes1764570000000 implements MigrationInterface {
  name = 'CreateAuditPrunes1764570000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE keyhold_audit_prunes (
        through_sequence bigint PRIMARY KEY CHECK (through_sequence >= 1),
        anchor_hash text NOT NULL,
        time timestamptz NOT NULL,
        key_fingerprint text NOT NULL,
        signature text NOT NULL
      )`);
    await queryRunner.query(`COMMENT ON TABLE keyhold_audit_prunes IS
      'Signed statements that Keyhold removed the audit records through through_sequence (whose hash was anchor_hash)'`);
    // Roles that read the checkpoints (kmsctl's read-only role, docs/audit.md) read the prunes too: verification needs both.
    await queryRunner.query(`DO $$
      DECLARE reader record;
      BEGIN
        FOR reader IN SELECT DISTINCT grantee FROM information_schema.table_privileges
          WHERE table_name = 'keyhold_audit_checkpoints' AND privilege_type = 'SELECT' AND grantee <> current_user
        LOOP
          IF reader.grantee = 'PUBLIC' THEN EXECUTE 'GRANT SELECT ON keyhold_audit_prunes TO PUBLIC';
          ELSE EXECUTE format('GRANT SELECT ON keyhold_audit_prunes TO %I', reader.grantee);
          END IF;
        END LOOP;
      END $$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE keyhold_audit_prunes');
  }
}
