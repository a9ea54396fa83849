import { Logger } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { ApiError, type MasterKeyStatusView } from '@keyhold/contracts';
import { generateKeyMaterial } from '@keyhold/crypto-core';
import type { AuditScope } from '../audit/audit-scope';
import type { MasterKeyRing, MasterKeyVersionRow, MasterKeyVersionState } from '../seal/master-key-ring';
import type { MasterKeyRewrapJob } from './master-key-rewrap';
import type { RewrapTarget } from './rewrap-targets';

/** Postgres channel: a master-key version was added or retired; every instance reloads its keyring. */
export const MASTER_KEY_CHANGED_CHANNEL = 'keyhold_master_key_changed';

type Row = Record<string, unknown>;
type Query = { query: DataSource['query'] };

export type { MasterKeyStatusView as MasterKeyStatus } from '@keyhold/contracts';

/** Reads keyhold_master_key_versions for the keyring. */
export async function readMasterKeyVersions(db: Query): Promise<MasterKeyVersionRow[]> {
  const rows: Row[] = await db.query(`SELECT version, sealed_key, state FROM keyhold_master_key_versions ORDER BY version`);
  return rows.map((row) => ({ version: row.version as number, sealedKey: (row.sealed_key as Buffer | null) ?? null, state: row.state as MasterKeyVersionState }));
}

/**
 * Master-key versions: rotate (a new random version sealed under the root becomes the one new material is
 * wrapped under, here and, through NOTIFY, on every instance; the rewrap job then moves everything onto it),
 * retire (only once no target references the version; its sealed key is deleted) and status.
 */
export class MasterKeyService {
  private readonly logger = new Logger(MasterKeyService.name);

  constructor(
    private readonly dataSource: DataSource,
    private readonly ring: MasterKeyRing,
    private readonly targets: readonly RewrapTarget[],
    private readonly rewrap: MasterKeyRewrapJob,
    private readonly now: () => Date,
  ) {}

  async status(): Promise<MasterKeyStatusView> {
    // From the database, not the keyring: the status reads the same on every instance, sealed or not.
    const rows: Row[] = await this.dataSource.query(`SELECT version, sealed_key IS NULL AS by_root, state, created_at, retired_at FROM keyhold_master_key_versions ORDER BY version`);
    const current = Number(rows.find((row) => row.state === 'active')?.version ?? 1);
    const counts = await this.referenceCounts(this.dataSource);
    const remaining: Record<string, number> = {};
    for (const [target, byVersion] of counts) {
      remaining[target] = [...byVersion].filter(([version]) => version < current).reduce((sum, [, count]) => sum + count, 0);
    }
    return {
      currentVersion: current,
      protection: this.ring.protection,
      versions: rows.map((row) => ({
        version: row.version as number,
        state: row.state as MasterKeyVersionState,
        servedByRoot: row.state !== 'retired' && Boolean(row.by_root),
        createdAt: (row.created_at as Date).toISOString(),
        retiredAt: row.retired_at ? (row.retired_at as Date).toISOString() : null,
        references: Object.fromEntries([...counts].map(([target, byVersion]) => [target, byVersion.get(row.version as number) ?? 0])),
      })),
      remaining,
      rewrap: this.rewrap.status(),
    };
  }

  /**
   * A new version, sealed under the root, becomes active; the previous one starts retiring. With `audit` (an
   * approved rotation), its record `master-key.rotate` is written in the rotation's transaction.
   */
  async rotate(audit?: AuditScope): Promise<{ version: number; previousVersion: number }> {
    // Fails with SEALED before touching the database if this instance cannot seal the new key.
    this.ring.liveVersions();
    const key = generateKeyMaterial('aes-256-gcm');
    let result: { version: number; previousVersion: number };
    try {
      result = await this.dataSource.transaction(async (manager) => {
        // One rotation at a time, across instances: the next number is read under this lock.
        await manager.query(`LOCK TABLE keyhold_master_key_versions IN SHARE ROW EXCLUSIVE MODE`);
        const [{ active, next }] = await manager.query(
          `SELECT (SELECT version FROM keyhold_master_key_versions WHERE state = 'active') AS active,
                  COALESCE(max(version), 0) + 1 AS next FROM keyhold_master_key_versions`,
        );
        // Another instance may have rekeyed the root since this one unsealed: a version sealed under the old
        // root here would be lost at the next restart.
        const [sample] = await manager.query(
          `SELECT version, sealed_key FROM keyhold_master_key_versions WHERE state <> 'retired' AND sealed_key IS NOT NULL ORDER BY version DESC LIMIT 1`,
        );
        if (sample && !this.ring.rootOpens(sample.version as number, sample.sealed_key as Buffer)) {
          throw new ApiError('INVALID_STATE', 'the root master key was rekeyed since this instance unsealed; restart it with the new root, then rotate');
        }
        const version = Number(next);
        await manager.query(`UPDATE keyhold_master_key_versions SET state = 'retiring' WHERE state = 'active'`);
        await manager.query(
          `INSERT INTO keyhold_master_key_versions (version, sealed_key, state, created_at) VALUES ($1, $2, 'active', $3)`,
          [version, this.ring.sealVersionKey(key, version), this.now()],
        );
        await manager.query('SELECT pg_notify($1, $2)', [MASTER_KEY_CHANGED_CHANNEL, String(version)]);
        await audit?.record(manager, { operation: 'master-key.rotate', keyName: null, keyVersion: version });
        return { version, previousVersion: Number(active) };
      });
    } finally {
      key.fill(0);
    }
    await this.reloadAfterCommit();
    this.logger.log({ msg: 'master key rotated', masterKeyVersion: result.version, previousVersion: result.previousVersion });
    this.rewrap.trigger();
    return result;
  }

  /** Refuses (INVALID_STATE) unless `version` exists, is not the active one, and nothing references it. */
  async checkRetirable(version: number, db: Query = this.dataSource, lock = false): Promise<void> {
    const rows: Row[] = await db.query(`SELECT state FROM keyhold_master_key_versions WHERE version = $1${lock ? ' FOR UPDATE' : ''}`, [version]);
    if (!rows[0]) throw new ApiError('NOT_FOUND', `no master key version ${version}`);
    if (rows[0].state === 'retired') throw new ApiError('INVALID_STATE', `master key version ${version} is already retired`);
    if (rows[0].state === 'active') {
      throw new ApiError('INVALID_STATE', `master key version ${version} is the active one; rotate the master key first, then retire it once rewrapped`);
    }
    const referencing = [...(await this.referenceCounts(db))]
      .map(([target, byVersion]) => [target, byVersion.get(version) ?? 0] as const)
      .filter(([, count]) => count > 0);
    if (referencing.length > 0) {
      const what = referencing.map(([target, count]) => `${count} ${target}`).join(', ');
      throw new ApiError('INVALID_STATE', `master key version ${version} still protects ${what}; wait for the rewrap to finish (GET /api/v1/master-key)`);
    }
  }

  /**
   * Deletes the version's sealed key. The row lock (FOR UPDATE) and the trigger on every target (FOR KEY SHARE
   * on the version's row) serialise this against any write still naming the version: either that write
   * commits first and is counted here, or it waits and then fails. With `audit` (an approved retirement), its
   * record `master-key.retire` is written in the same transaction.
   */
  async retire(version: number, audit?: AuditScope): Promise<{ version: number; retiredAt: string }> {
    const retiredAt = this.now();
    await this.dataSource.transaction(async (manager) => {
      await this.checkRetirable(version, manager, true);
      await manager.query(
        `UPDATE keyhold_master_key_versions SET state = 'retired', sealed_key = NULL, retired_at = $2 WHERE version = $1`,
        [version, retiredAt],
      );
      await manager.query('SELECT pg_notify($1, $2)', [MASTER_KEY_CHANGED_CHANNEL, String(version)]);
      await audit?.record(manager, { operation: 'master-key.retire', keyName: null, keyVersion: version });
    });
    await this.reloadAfterCommit();
    this.logger.log({ msg: 'master key version retired', masterKeyVersion: version });
    return { version, retiredAt: retiredAt.toISOString() };
  }

  /**
   * The change is committed: a failure to reload here (sealed meanwhile, a database blip) must not report the
   * operation as failed. The NOTIFY sent with the change, or the next resync, reloads the keyring anyway.
   */
  private async reloadAfterCommit(): Promise<void> {
    if (!this.ring.loaded) return;
    try {
      await this.ring.load();
    } catch (error) {
      this.logger.warn({ msg: 'master-key versions not reloaded after the change; the notification will', err: (error as Error).message });
    }
  }

  private async referenceCounts(db: Query): Promise<Map<string, Map<number, number>>> {
    const counts = new Map<string, Map<number, number>>();
    for (const target of this.targets) counts.set(target.name, await target.countByVersion(db));
    return counts;
  }
}
