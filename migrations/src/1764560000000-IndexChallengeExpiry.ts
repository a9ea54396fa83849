import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Expired WebAuthn challenges are deleted by `expires_at` each time sign-in options are asked for, which anyone may
 * ask for: without an index each request scanned the whole table.
 */
export class IndexChallengeExpiry1764560000000 implements MigrationInterface {
  name = 'IndexChallengeExpiry1764560000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('CREATE INDEX keyhold_webauthn_challenges_expires_at ON keyhold_webauthn_challenges (expires_at)');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP INDEX keyhold_webauthn_challenges_expires_at');
  }
}
