import type { DataSource } from 'typeorm';
import { randomToken } from '@keyhold/crypto-core';
import {
  CHALLENGE_TTL_MS,
  type ChallengeData,
  type ChallengePurpose,
  type ChallengeStore,
  type ConsumedChallenge,
  type IssuedChallenge,
} from '@keyhold/auth';


/**
 * WebAuthn challenges kept server-side: each is random, bound to a purpose and its data, usable once, and
 * only for five minutes. The browser's answer names its challenge (in clientDataJSON), and consuming it is
 * one conditional UPDATE, so two answers racing with one challenge cannot both pass.
 */
export class PostgresChallengeStore implements ChallengeStore {
  constructor(
    private readonly dataSource: DataSource,
    private readonly now: () => Date,
  ) {}

  async issue(purpose: ChallengePurpose, data: ChallengeData = {}, options: { challenge?: string } = {}): Promise<IssuedChallenge> {
    const challenge = options.challenge ?? randomToken(32);
    const now = this.now();
    const expiresAt = new Date(now.getTime() + CHALLENGE_TTL_MS);
    await this.dataSource.query(
      `INSERT INTO keyhold_webauthn_challenges (challenge, purpose, data, expires_at) VALUES ($1, $2, $3, $4)`,
      [challenge, purpose, JSON.stringify(data), expiresAt],
    );
    // Expired challenges are useless; drop them as we go rather than with a separate job.
    await this.dataSource.query(`DELETE FROM keyhold_webauthn_challenges WHERE expires_at < $1`, [new Date(now.getTime() - 3_600_000)]);
    return { id: challenge, challenge, expiresAt };
  }

  /** The challenge if it exists, has this purpose, has not expired and was not used; it is used now. */
  async consume(challenge: string, purpose: ChallengePurpose): Promise<ConsumedChallenge | null> {
    const rows: Array<{ data: ChallengeData }> = await this.dataSource.query(
      `UPDATE keyhold_webauthn_challenges SET consumed_at = $3
        WHERE challenge = $1 AND purpose = $2 AND consumed_at IS NULL AND expires_at > $3
        RETURNING data`,
      [challenge, purpose, this.now()],
    );
    const updated = Array.isArray(rows[0]) ? (rows[0] as Array<{ data: ChallengeData }>) : rows;
    return updated[0] ? { id: challenge, challenge, purpose, data: updated[0].data } : null;
  }
}
