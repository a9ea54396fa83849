import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Grants managed on the admin plane, Keyhold's own CA, and the client certificates it issued. */
export class CreateServiceIdentities1764210000000 implements MigrationInterface {
  name = 'CreateServiceIdentities1764210000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE keyhold_grants (
        id uuid PRIMARY KEY,
        identity_pattern text NOT NULL,
        key_pattern text NOT NULL,
        operations text[] NOT NULL,
        expires_at timestamptz,
        description text,
        created_by uuid,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
      )`);
    await queryRunner.query(`
      CREATE TABLE keyhold_certificate_authority (
        id integer PRIMARY KEY CHECK (id = 1),
        certificate_pem text NOT NULL,
        sealed_private_key bytea NOT NULL,
        master_key_version integer NOT NULL,
        created_at timestamptz NOT NULL
      )`);
    await queryRunner.query(`COMMENT ON COLUMN keyhold_certificate_authority.sealed_private_key IS
      'SECRET: the CA private key (PKCS#8), only ever stored sealed (AES-256-GCM) under the master key'`);
    await queryRunner.query(`
      CREATE TABLE keyhold_service_certificates (
        serial_number text PRIMARY KEY,
        identity text NOT NULL,
        fingerprint_sha256 text NOT NULL UNIQUE,
        certificate_pem text NOT NULL,
        not_before timestamptz NOT NULL,
        not_after timestamptz NOT NULL,
        issued_by uuid,
        issued_at timestamptz NOT NULL,
        revoked_at timestamptz,
        revoked_by uuid,
        revocation_reason text
      )`);
    await queryRunner.query(`CREATE INDEX keyhold_service_certificates_identity_idx ON keyhold_service_certificates (identity)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE keyhold_service_certificates');
    await queryRunner.query('DROP TABLE keyhold_certificate_authority');
    await queryRunner.query('DROP TABLE keyhold_grants');
  }
}
