import type { DataSource } from 'typeorm';
import { SEAL_CHANNEL } from './seal-state';

/**
 * Sealing every instance, durably. An approved seal advances the generation in Postgres and NOTIFYs in the
 * same transaction; instances seal on the notification. One cut off from Postgres at that moment misses it,
 * but its listener resynchronises when it reconnects: it then reads a generation newer than the last it saw,
 * and seals. (An instance that starts later starts as its sealer says: a restart is how file- and
 * token-protected instances unseal.)
 */
export class SealGeneration {
  private seen = 0n;

  constructor(private readonly dataSource: DataSource) {}

  /** At start: the generation this instance begins from. */
  async load(): Promise<void> {
    this.seen = await this.read();
  }

  /** Advances the generation and notifies every instance, atomically (NOTIFY is delivered at commit). */
  async advance(): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      // TypeORM answers an UPDATE ... RETURNING as [rows, affected count].
      const [rows]: [Array<{ generation: string }>, number] = await manager.query(
        `UPDATE keyhold_seal_generation SET generation = generation + 1, sealed_at = now() WHERE id = 1 RETURNING generation`,
      );
      const generation = BigInt(rows[0].generation);
      await manager.query('SELECT pg_notify($1, $2)', [SEAL_CHANNEL, generation.toString()]);
      this.seen = generation;
    });
  }

  /** A seal notification arrived: its generation is seen. */
  noticed(payload: string): void {
    if (/^[0-9]{1,19}$/.test(payload) && BigInt(payload) > this.seen) this.seen = BigInt(payload);
  }

  /** After a reconnect: true when a seal happened that this instance was not told about. */
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
