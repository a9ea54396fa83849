import type { DataSource } from 'typeorm';
import { randomToken } from '@keyhold/crypto-core';

export type ChallengePurpose = 'enrolment' | 'sign-in' | 'add-passkey' | 'approval';

/**
 * WebAuthn challenges kept server-side: each is random, bound to a purpose and its data, usable once, and
 * only for five minutes. The browser's answer names its challenge (in clientDataJSON), and consuming it is
 * one conditional UPDATE, so two answers racing with one challenge cannot both pass.
 */
export class PostgresChallengeStore {
  static readonly TTL_MS = 5 * 60 * 1000;

  constructor(
    private readonly dataSource: DataSource,
    private readonly now: () => Date,
  ) {}

  async issue(purpose: ChallengePurpose, data: Record<string, unknown> = {}, challenge = randomToken(32)): Promise<string> {
    const now = this.now();
    await this.dataSource.query(
      `INSERT INTO keyhold_webauthn_challenges (challenge, purpose, data, expires_at) VALUES ($1, $2, $3, $4)`,
      [challenge, purpose, JSON.stringify(data), new Date(now.getTime() + PostgresChallengeStore.TTL_MS)],
    );
    // Expired challenges are useless; drop them as we go rather than with a separate job.
    await this.dataSource.query(`DELETE FROM keyhold_webauthn_challenges WHERE expires_at < $1`, [new Date(now.getTime() - 3_600_000)]);
    return challenge;
  }

  /** The challenge's data if it exists, has this purpose, has not expired and was not used; it is used now. */
  async consume(challenge: string, purpose: ChallengePurpose): Promise<Record<string, unknown> | null> {
    const rows: Array<{ data: Record<string, unknown> }> = await this.dataSource.query(
      `UPDATE keyhold_webauthn_challenges SET consumed_at = $3
        WHERE challenge = $1 AND purpose = $2 AND consumed_at IS NULL AND expires_at > $3
        RETURNING data`,
      [challenge, purpose, this.now()],
    );
    const updated = Array.isArray(rows[0]) ? (rows[0] as Array<{ data: Record<string, unknown> }>) : rows;
    return updated[0]?.data ?? null;
  }
}

/** The challenge a WebAuthn response answers, read from its clientDataJSON (verified later by the ceremony). */
export function challengeOfResponse(response: unknown): string | null {
  try {
    const clientDataJSON = (response as { response?: { clientDataJSON?: unknown } })?.response?.clientDataJSON;
    if (typeof clientDataJSON !== 'string' || clientDataJSON.length > 4096) return null;
    const parsed = JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8')) as { challenge?: unknown };
    return typeof parsed.challenge === 'string' && parsed.challenge.length <= 512 ? parsed.challenge : null;
  } catch {
    return null;
  }
}
