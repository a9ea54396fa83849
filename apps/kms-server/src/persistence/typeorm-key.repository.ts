import type { DataSource, EntityManager } from 'typeorm';
import type {
  Key,
  KeyRepository,
  KeyVersion,
  LockedKeyTransaction,
  WrappedVersionMaterial,
} from '@keyhold/key-lifecycle';
import { KeyEntity } from './key.entity';
import { KeyVersionEntity } from './key-version.entity';

export class KeyExistsError extends Error {
  constructor(name: string) {
    super(`a key named '${name}' exists or existed; names are never reused`);
    this.name = 'KeyExistsError';
  }
}

/** Usage figures kept next to each version; not part of the domain model. */
export interface VersionUsage {
  encryptions: number;
  lastUsedAt: Date | null;
}

export interface KeyWithUsage {
  key: Key;
  usage: Map<number, VersionUsage>;
}

const UNIQUE_VIOLATION = '23505';

/** Postgres channel on which every committed key change is announced, with the key's name as payload. */
export const KEY_CHANGED_CHANNEL = 'keyhold_key_changed';

export class TypeormKeyRepository implements KeyRepository {
  constructor(private readonly dataSource: DataSource) {}

  async findByName(name: string): Promise<Key | null> {
    return (await this.findWithUsage(name))?.key ?? null;
  }

  async findWithUsage(name: string, manager: EntityManager = this.dataSource.manager): Promise<KeyWithUsage | null> {
    const entity = await manager.findOne(KeyEntity, { where: { name }, relations: { versions: true } });
    return entity ? toKeyWithUsage(entity) : null;
  }

  async list(limit: number, afterName?: string): Promise<Key[]> {
    return (await this.listWithUsage(limit, afterName)).map((entry) => entry.key);
  }

  async listWithUsage(limit: number, afterName?: string): Promise<KeyWithUsage[]> {
    const query = this.dataSource.manager
      .createQueryBuilder(KeyEntity, 'key')
      .orderBy('key.name', 'ASC')
      .limit(limit);
    if (afterName !== undefined) query.where('key.name > :afterName', { afterName });
    const keys = await query.getMany();
    if (keys.length === 0) return [];
    const versions = await this.dataSource.manager
      .createQueryBuilder(KeyVersionEntity, 'version')
      .where('version.key_id IN (:...ids)', { ids: keys.map((key) => key.id) })
      .getMany();
    return keys.map((key) => toKeyWithUsage({ ...key, versions: versions.filter((v) => v.keyId === key.id) }));
  }

  /** `alsoInTransaction` runs last in the same transaction (the audit record of the creation). */
  async insert(
    key: Key,
    material: readonly WrappedVersionMaterial[],
    alsoInTransaction?: (manager: EntityManager) => Promise<void>,
  ): Promise<void> {
    try {
      await this.dataSource.transaction(async (manager) => {
        await manager.insert(KeyEntity, toKeyRow(key));
        await manager.insert(
          KeyVersionEntity,
          key.versions.map((version) => toVersionRow(key.id, version, material)),
        );
        await alsoInTransaction?.(manager);
      });
    } catch (error) {
      if ((error as { driverError?: { code?: string } }).driverError?.code === UNIQUE_VIOLATION) {
        throw new KeyExistsError(key.name);
      }
      throw error;
    }
  }

  /**
   * `usage` is the stored usage of each version at lock time, for answering with the committed state; `manager`
   * is the transaction itself, for writing the change's audit record in it.
   */
  withLockedKey<T>(
    name: string,
    work: (key: Key, tx: LockedKeyTransaction, usage: ReadonlyMap<number, VersionUsage>, manager: EntityManager) => Promise<T>,
  ): Promise<T | null> {
    return this.dataSource.transaction(async (manager) => {
      // The row lock serialises every state change of one key: concurrent rotations queue here and each sees
      // the versions the previous one committed, so version numbers come out consecutive.
      const locked = await manager
        .createQueryBuilder(KeyEntity, 'key')
        .setLock('pessimistic_write')
        .where('key.name = :name', { name })
        .getOne();
      if (!locked) return null;
      const versions = await manager.find(KeyVersionEntity, { where: { keyId: locked.id } });
      const current = toKeyWithUsage({ ...locked, versions });
      return work(current.key, new TypeormLockedKeyTransaction(manager, current.key), current.usage, manager);
    });
  }

  async loadMaterial(keyId: string): Promise<WrappedVersionMaterial[]> {
    const rows = await this.dataSource.manager
      .createQueryBuilder(KeyVersionEntity, 'version')
      .addSelect('version.wrappedMaterial')
      .where('version.key_id = :keyId AND version.wrapped_material IS NOT NULL', { keyId })
      .getMany();
    return rows.map((row) => ({
      version: row.version,
      wrapped: row.wrappedMaterial as Buffer,
      masterKeyVersion: row.masterKeyVersion as number,
    }));
  }

  async findDueWork(now: Date, limit: number): Promise<string[]> {
    const rows: Array<{ name: string }> = await this.dataSource.query(
      `SELECT k.name FROM keyhold_keys k
        WHERE (k.state = 'enabled' AND k.next_rotation_at <= $1)
           OR (k.state = 'pending_destruction' AND k.destroy_at <= $1)
           OR EXISTS (SELECT 1 FROM keyhold_key_versions v
                       WHERE v.key_id = k.id AND v.state = 'pending_destruction' AND v.destroy_at <= $1)
        ORDER BY k.name
        LIMIT $2`,
      [now, limit],
    );
    return rows.map((row) => row.name);
  }

  /**
   * Adds usage counted in memory since the last flush, in one statement for every version touched: the running
   * totals, and the encryptions of the UTC day of each entry's last use (an entry spans one flush interval).
   */
  async addUsage(entries: ReadonlyArray<{ keyId: string; version: number; count: number; lastUsedAt: Date }>): Promise<void> {
    if (entries.length === 0) return;
    await this.dataSource.query(
      `WITH u AS (
         SELECT * FROM unnest($1::uuid[], $2::int[], $3::bigint[], $4::timestamptz[]) AS u(key_id, version, count, last_used_at)
       ), totals AS (
         UPDATE keyhold_key_versions v
            SET encryptions = v.encryptions + u.count,
                last_used_at = GREATEST(v.last_used_at, u.last_used_at)
           FROM u
          WHERE v.key_id = u.key_id AND v.version = u.version
         RETURNING v.key_id, v.version
       )
       INSERT INTO keyhold_key_usage_daily AS d (key_id, version, day, encryptions)
       SELECT u.key_id, u.version, (u.last_used_at AT TIME ZONE 'UTC')::date, u.count
         FROM u JOIN totals t ON t.key_id = u.key_id AND t.version = u.version
        WHERE u.count > 0
       ON CONFLICT (key_id, day, version) DO UPDATE SET encryptions = d.encryptions + EXCLUDED.encryptions`,
      [
        entries.map((entry) => entry.keyId),
        entries.map((entry) => entry.version),
        entries.map((entry) => entry.count),
        entries.map((entry) => entry.lastUsedAt),
      ],
    );
  }

  /** Encryptions per version per UTC day from `since` (a YYYY-MM-DD date), oldest first. */
  async usageHistory(keyId: string, since: string): Promise<Array<{ day: string; version: number; encryptions: number }>> {
    const rows: Array<{ day: string; version: number; encryptions: string }> = await this.dataSource.query(
      `SELECT to_char(day, 'YYYY-MM-DD') AS day, version, encryptions FROM keyhold_key_usage_daily
        WHERE key_id = $1 AND day >= $2::date ORDER BY day, version`,
      [keyId, since],
    );
    return rows.map((row) => ({ day: row.day, version: row.version, encryptions: Number(row.encryptions) }));
  }
}

class TypeormLockedKeyTransaction implements LockedKeyTransaction {
  constructor(
    private readonly manager: EntityManager,
    private readonly before: Key,
  ) {}

  async save(next: Key, newMaterial: readonly WrappedVersionMaterial[] = []): Promise<void> {
    await this.manager.update(KeyEntity, { id: next.id }, toKeyRow(next));
    // Delivered to every instance's cache when, and only if, this transaction commits.
    await this.manager.query('SELECT pg_notify($1, $2)', [KEY_CHANGED_CHANNEL, next.name]);
    const previous = new Map(this.before.versions.map((version) => [version.version, version]));
    for (const version of next.versions) {
      const old = previous.get(version.version);
      if (!old) {
        await this.manager.insert(KeyVersionEntity, toVersionRow(next.id, version, newMaterial));
      } else if (old !== version) {
        await this.manager.update(
          KeyVersionEntity,
          { keyId: next.id, version: version.version },
          { state: version.state, destroyAt: version.destroyAt, destroyedAt: version.destroyedAt },
        );
      }
    }
  }

  async shredMaterial(versions: readonly number[]): Promise<void> {
    if (versions.length === 0) return;
    // Overwrite first, then drop: the live row never holds the old bytes again. Older row versions (until vacuum)
    // and the write-ahead log (until recycled) still do; docs/master-key.md says how rotation and retirement close that.
    await this.manager.query(
      `UPDATE keyhold_key_versions SET wrapped_material = decode(repeat('00', length(wrapped_material)), 'hex')
        WHERE key_id = $1 AND version = ANY($2::int[]) AND wrapped_material IS NOT NULL`,
      [this.before.id, versions],
    );
    await this.manager.query(
      `UPDATE keyhold_key_versions SET wrapped_material = NULL, master_key_version = NULL, state = 'destroyed'
        WHERE key_id = $1 AND version = ANY($2::int[])`,
      [this.before.id, versions],
    );
  }
}

function toKeyRow(key: Key): Omit<KeyEntity, 'versions'> {
  return {
    id: key.id,
    name: key.name,
    algorithm: key.algorithm,
    description: key.description,
    state: key.state,
    primaryVersion: key.primaryVersion,
    minDecryptionVersion: key.minDecryptionVersion,
    rotationPeriodDays: key.rotationPeriodDays,
    nextRotationAt: key.nextRotationAt,
    destroyAt: key.destroyAt,
    labels: { ...key.labels },
    createdAt: key.createdAt,
    updatedAt: key.updatedAt,
  };
}

function toVersionRow(
  keyId: string,
  version: KeyVersion,
  material: readonly WrappedVersionMaterial[],
): Omit<KeyVersionEntity, 'key'> {
  const wrapped = material.find((entry) => entry.version === version.version);
  if (!wrapped) throw new Error(`no wrapped material given for new version ${version.version}`);
  return {
    keyId,
    version: version.version,
    state: version.state,
    wrappedMaterial: wrapped.wrapped,
    masterKeyVersion: wrapped.masterKeyVersion,
    createdAt: version.createdAt,
    destroyAt: version.destroyAt,
    destroyedAt: version.destroyedAt,
    encryptions: 0,
    lastUsedAt: null,
  };
}

function toKeyWithUsage(entity: KeyEntity): KeyWithUsage {
  const versions = [...(entity.versions ?? [])].sort((a, b) => a.version - b.version);
  return {
    key: {
      id: entity.id,
      name: entity.name,
      algorithm: entity.algorithm as Key['algorithm'],
      description: entity.description,
      state: entity.state as Key['state'],
      primaryVersion: entity.primaryVersion,
      minDecryptionVersion: entity.minDecryptionVersion,
      rotationPeriodDays: entity.rotationPeriodDays,
      nextRotationAt: entity.nextRotationAt,
      destroyAt: entity.destroyAt,
      labels: entity.labels ?? {},
      createdAt: entity.createdAt,
      updatedAt: entity.updatedAt,
      versions: versions.map((version) => ({
        version: version.version,
        state: version.state as KeyVersion['state'],
        createdAt: version.createdAt,
        destroyAt: version.destroyAt,
        destroyedAt: version.destroyedAt,
      })),
    },
    usage: new Map(
      versions.map((version) => [version.version, { encryptions: version.encryptions, lastUsedAt: version.lastUsedAt }]),
    ),
  };
}
