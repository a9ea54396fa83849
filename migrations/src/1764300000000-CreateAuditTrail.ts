import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The audit trail (docs/audit.md): one hash chain of records per database, its head row (the lock every append
 * takes, so several Keyhold instances extend one chain), signed checkpoints, and the audit keys sealed under
 * the master key.
 */
export class CreateAuditTrail1764300000000 implements MigrationInterface {
  name = 'CreateAuditTrail1764300000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE keyhold_audit_records (
        sequence bigint PRIMARY KEY CHECK (sequence >= 1),
        time timestamptz NOT NULL,
        plane text NOT NULL CHECK (plane IN ('service', 'admin', 'system')),
        actor text,
        operation text NOT NULL,
        key_name text,
        key_version integer,
        outcome text NOT NULL CHECK (outcome IN ('success', 'refused', 'error')),
        error_code text,
        request_id text,
        source_address text,
        context_hmac text,
        prev_hash text NOT NULL,
        hash text NOT NULL
      )`);
    await queryRunner.query(`COMMENT ON TABLE keyhold_audit_records IS
      'Append-only hash chain of every operation on both planes; never plaintext, key material, tokens or codes'`);
    await queryRunner.query(`COMMENT ON COLUMN keyhold_audit_records.context_hmac IS
      'HMAC-SHA256 of the canonical encryption context under the audit HMAC key: the context itself is never stored'`);
    // Appended in time order: a BRIN index answers time ranges at a fraction of a B-tree's cost per insert.
    await queryRunner.query('CREATE INDEX keyhold_audit_records_time ON keyhold_audit_records USING brin (time)');
    await queryRunner.query('CREATE INDEX keyhold_audit_records_key ON keyhold_audit_records (key_name, sequence)');
    await queryRunner.query('CREATE INDEX keyhold_audit_records_actor ON keyhold_audit_records (actor, sequence)');
    await queryRunner.query(`
      CREATE TABLE keyhold_audit_chain_head (
        id smallint PRIMARY KEY CHECK (id = 1),
        sequence bigint NOT NULL,
        hash text NOT NULL
      )`);
    await queryRunner.query(`INSERT INTO keyhold_audit_chain_head (id, sequence, hash) VALUES (1, 0, repeat('0', 64))`);
    await queryRunner.query(`
      CREATE TABLE keyhold_audit_checkpoints (
        sequence bigint PRIMARY KEY,
        head_hash text NOT NULL,
        time timestamptz NOT NULL,
        key_fingerprint text NOT NULL,
        signature text NOT NULL
      )`);
    await queryRunner.query(`
      CREATE TABLE keyhold_audit_keys (
        purpose text PRIMARY KEY CHECK (purpose IN ('context-hmac', 'checkpoint-signing')),
        sealed bytea NOT NULL,
        master_key_version integer NOT NULL,
        public_key text,
        created_at timestamptz NOT NULL
      )`);
    await queryRunner.query(`COMMENT ON COLUMN keyhold_audit_keys.sealed IS
      'SECRET, sealed: the HMAC key or the Ed25519 private key (PKCS#8), sealed under master key version master_key_version (MasterKey.seal, label keyhold audit <purpose> v1)'`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE keyhold_audit_keys');
    await queryRunner.query('DROP TABLE keyhold_audit_checkpoints');
    await queryRunner.query('DROP TABLE keyhold_audit_chain_head');
    await queryRunner.query('DROP TABLE keyhold_audit_records');
  }
}
