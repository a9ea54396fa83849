import type { DataSource, EntityManager } from 'typeorm';
import { SEAL_CHANNEL } from './seal-state';

/**
 * Sealing every instance, durably. An approved seal advances the generation in Postgres and NOTIFYs in the
 * same transaction; instances seal on the notification. One cut off from Postgres at that moment misses it,
 * but it reads the generation again when its listener reconnects and periodically (PeriodicResync): it then
 * finds one newer than the last it saw, and seals. (An instance that starts later starts as its sealer says: a restart is how file- and
 * token-protected instances unseal.)
 */
export class SealGeneration {
  private seen = 0n;

  constructor(private readonly dataSource: DataSource) {}

  /** At start: the generation this instance begins from. */
  async load(): Promise<void> {
    this.seen = await this.read();
  }

  /**
   * Advances the generation and notifies every instance in the caller's transaction, so the seal commits with
   * whatever else it does (the approval and its audit record), or not at all: NOTIFY is delivered at commit.
   * Returns the new generation's notification payload; give it to `noticed` once committed, not before: a
   * rolled-back generation counted as seen would hide the next real seal from `missedSeal`.
   */
  async advance(manager: EntityManager): Promise<string> {
    // TypeORM answers an UPDATE ... RETURNING as [rows, affected count].
    const [rows]: [Array<{ generation: string }>, number] = await manager.query(
      `UPDATE keyhold_seal_generation SET generation = generation + 1, sealed_at = now() WHERE id = 1 RETURNING generation`,
    );
    const payload = BigInt(rows[0].generation).toString();
    await manager.query('SELECT pg_notify($1, $2)', [SEAL_CHANNEL, payload]);
    return payload;
  }

  /** A seal notification arrived (or this instance's own seal committed): its generation is seen. */
  noticed(payload: string): void {
    if (/^[0-9]{1,19}$/.test(payload) && BigInt(payload) > this.seen) this.seen = BigInt(payload);
  }

  /** After a reconnect, and periodically: true when a seal happened that this instance was not told about. */
  async missedSeal(): Promise<boolean> {
    const current = await this.read();
    const missed = current > this.seen;
    this.seen = current > this.seen ? current : this.seen;
    return missed;
  }

  private async read(): Promise<bigint> {
    const rows: Array<{ generation: string }> = await this.dataSource.query(`SELECT generation FROM keyhold_seal_generation WHERE id = 1`);
    return rows.length ? BigInt(rows[0].generation) : 0n;
  }
}
