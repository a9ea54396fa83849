import type { DataSource, EntityManager } from 'typeorm';
import type { Grant, GrantView, Operation } from '@keyhold/contracts';

export const GRANTS_CHANGED_CHANNEL = 'keyhold_grants_changed';

/** A grant as stored: the wire's GrantView. */
export type StoredGrant = GrantView;

type Row = Record<string, unknown>;
type InTransaction = (manager: EntityManager) => Promise<void>;

const toGrant = (row: Row): StoredGrant => ({
  id: row.id as string,
  identity: row.identity_pattern as string,
  keys: row.key_pattern as string,
  operations: row.operations as Operation[],
  ...(row.expires_at ? { expiresAt: (row.expires_at as Date).toISOString() } : {}),
  ...(row.description ? { description: row.description as string } : {}),
  createdAt: (row.created_at as Date).toISOString(),
  updatedAt: (row.updated_at as Date).toISOString(),
});

/** Grants managed on the admin plane. Every change is announced so that every instance reloads them. */
export class GrantsRepository {
  constructor(private readonly dataSource: DataSource) {}

  async list(): Promise<StoredGrant[]> {
    const rows: Row[] = await this.dataSource.query(`SELECT * FROM keyhold_grants ORDER BY created_at, id`);
    return rows.map(toGrant);
  }

  async find(id: string): Promise<StoredGrant | null> {
    const rows: Row[] = await this.dataSource.query(`SELECT * FROM keyhold_grants WHERE id = $1`, [id]);
    return rows[0] ? toGrant(rows[0]) : null;
  }

  /** Each change takes `alsoInTransaction`, run last in its transaction (the change's audit record). */
  async insert(id: string, grant: Grant, createdBy: string | null, at: Date, alsoInTransaction?: InTransaction): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      await manager.query(
        `INSERT INTO keyhold_grants (id, identity_pattern, key_pattern, operations, expires_at, description, created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`,
        [id, grant.identity, grant.keys, grant.operations, grant.expiresAt ?? null, grant.description ?? null, createdBy, at],
      );
      await manager.query(`SELECT pg_notify($1, $2)`, [GRANTS_CHANGED_CHANNEL, id]);
      await alsoInTransaction?.(manager);
    });
  }

  async update(id: string, grant: Grant, at: Date, alsoInTransaction?: InTransaction): Promise<boolean> {
    return this.dataSource.transaction(async (manager) => {
      const result: [unknown[], number] = await manager.query(
        `UPDATE keyhold_grants SET identity_pattern = $2, key_pattern = $3, operations = $4, expires_at = $5, description = $6, updated_at = $7
          WHERE id = $1`,
        [id, grant.identity, grant.keys, grant.operations, grant.expiresAt ?? null, grant.description ?? null, at],
      );
      await manager.query(`SELECT pg_notify($1, $2)`, [GRANTS_CHANGED_CHANNEL, id]);
      if (result[1] === 1) await alsoInTransaction?.(manager);
      return result[1] === 1;
    });
  }

  async delete(id: string, alsoInTransaction?: InTransaction): Promise<boolean> {
    return this.dataSource.transaction(async (manager) => {
      const result: [unknown[], number] = await manager.query(`DELETE FROM keyhold_grants WHERE id = $1`, [id]);
      await manager.query(`SELECT pg_notify($1, $2)`, [GRANTS_CHANGED_CHANNEL, id]);
      if (result[1] === 1) await alsoInTransaction?.(manager);
      return result[1] === 1;
    });
  }
}
