import { KeyUnwrapError } from '@keyhold/crypto-core';
import type { EntityManager } from 'typeorm';
import { keyVersionBinding } from '../keyring/key-version-binding';
import { type MasterKey, sealForStorage, wrapForStorage } from '../seal/master-key';

type Row = Record<string, unknown>;
type Query = Pick<EntityManager, 'query'>;

/** Where the last batch stopped; the next batch continues after it, so a row that cannot be opened is passed over. */
export type RewrapCursor = unknown[] | null;

export interface RewrapBatchResult {
  rewrapped: number;
  /** Rows whose stored bytes failed their integrity check: left as they are, and counted as still referencing. */
  damaged: number;
  /** null: this pass has seen every row of the target. */
  cursor: RewrapCursor;
}

/**
 * One place where secrets are stored wrapped or sealed under a master-key version. The rewrap job moves every
 * row of every target onto the newest version; retiring a version asks every target whether a row still
 * names it. To add one (say, sealed audit keys), implement this or use `sealedSecretTable`, and list it in
 * `rewrapTargets` (keyhold-server.ts).
 */
export interface RewrapTarget {
  /** Shown in the status and refusals: `key-versions`, `certificate-authority`, ... */
  readonly name: string;
  /** Rows per master-key version (rows with nothing wrapped, like destroyed versions, are not counted). */
  countByVersion(db: Query): Promise<Map<number, number>>;
  /**
   * In the caller's transaction: locks up to `limit` rows under versions older than `masterKey.version` with
   * FOR UPDATE SKIP LOCKED (rows another transaction holds are taken on a later pass), reopens each under its
   * version and stores it again under the newest, with the version that wrapped it (`wrapForStorage`): the
   * keyring can move to a newer version while the batch awaits Postgres.
   */
  rewrapBatch(manager: Query, masterKey: MasterKey, limit: number, after: RewrapCursor): Promise<RewrapBatchResult>;
}

async function countByVersion(db: Query, sql: string): Promise<Map<number, number>> {
  const rows: Row[] = await db.query(sql);
  return new Map(rows.map((row) => [Number(row.master_key_version), Number(row.count)]));
}

/** Every customer key version's material (keyhold_key_versions), bound to key id, version and algorithm. */
export const keyVersionsTarget: RewrapTarget = {
  name: 'key-versions',
  countByVersion: (db) =>
    countByVersion(
      db,
      `SELECT master_key_version, count(*)::int AS count FROM keyhold_key_versions
        WHERE wrapped_material IS NOT NULL GROUP BY master_key_version`,
    ),
  async rewrapBatch(manager, masterKey, limit, after) {
    const current = masterKey.version;
    const rows: Row[] = await manager.query(
      `SELECT kv.key_id, kv.version, kv.wrapped_material, kv.master_key_version, k.algorithm
         FROM keyhold_key_versions kv JOIN keyhold_keys k ON k.id = kv.key_id
        WHERE kv.master_key_version < $1 AND kv.wrapped_material IS NOT NULL
          AND ($2::uuid IS NULL OR (kv.key_id, kv.version) > ($2::uuid, $3::int))
        ORDER BY kv.key_id, kv.version
        LIMIT $4
        FOR UPDATE OF kv SKIP LOCKED`,
      [current, after?.[0] ?? null, after?.[1] ?? 0, limit],
    );
    let rewrapped = 0;
    let damaged = 0;
    for (const row of rows) {
      const binding = keyVersionBinding({ id: row.key_id as string, algorithm: row.algorithm as never }, row.version as number);
      let material: Buffer;
      try {
        material = masterKey.unwrap(row.wrapped_material as Buffer, row.master_key_version as number, binding);
      } catch (error) {
        if (!(error instanceof KeyUnwrapError)) throw error;
        damaged += 1;
        continue;
      }
      try {
        const { wrapped, masterKeyVersion } = wrapForStorage(masterKey, material, binding);
        await manager.query(
          `UPDATE keyhold_key_versions SET wrapped_material = $3, master_key_version = $4 WHERE key_id = $1 AND version = $2`,
          [row.key_id, row.version, wrapped, masterKeyVersion],
        );
      } finally {
        material.fill(0);
      }
      rewrapped += 1;
    }
    const last = rows.at(-1);
    return { rewrapped, damaged, cursor: rows.length < limit || !last ? null : [last.key_id, last.version] };
  },
};

export interface SealedSecretTable {
  name: string;
  table: string;
  /** The primary key column (one column). */
  idColumn: string;
  sealedColumn: string;
  /** The label the secret was sealed with (MasterKey.seal's second argument), from its row. */
  label: (row: Row) => string;
  /** Defaults to master_key_version. */
  versionColumn?: string;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

/**
 * A target for a table of small secrets sealed with MasterKey.seal (a bytea column and the master-key version
 * next to it): the CA private key, and whatever else is sealed the same way.
 */
export function sealedSecretTable(spec: SealedSecretTable): RewrapTarget {
  const versionColumn = spec.versionColumn ?? 'master_key_version';
  for (const identifier of [spec.table, spec.idColumn, spec.sealedColumn, versionColumn]) {
    if (!IDENTIFIER.test(identifier)) throw new Error(`not a plain SQL identifier: ${identifier}`);
  }
  const { table, idColumn: id, sealedColumn: sealed } = spec;
  return {
    name: spec.name,
    countByVersion: (db) =>
      countByVersion(
        db,
        `SELECT ${versionColumn} AS master_key_version, count(*)::int AS count FROM ${table}
          WHERE ${sealed} IS NOT NULL GROUP BY ${versionColumn}`,
      ),
    async rewrapBatch(manager, masterKey, limit, after) {
      const current = masterKey.version;
      const rows: Row[] = await manager.query(
        `SELECT * FROM ${table}
          WHERE ${versionColumn} < $1 AND ${sealed} IS NOT NULL AND ($2::text IS NULL OR ${id}::text > $2::text)
          ORDER BY ${id}::text LIMIT $3 FOR UPDATE SKIP LOCKED`,
        [current, after?.[0] ?? null, limit],
      );
      let rewrapped = 0;
      let damaged = 0;
      for (const row of rows) {
        const label = spec.label(row);
        let secret: Buffer;
        try {
          secret = masterKey.open(row[sealed] as Buffer, row[versionColumn] as number, label);
        } catch (error) {
          if (!(error instanceof KeyUnwrapError)) throw error;
          damaged += 1;
          continue;
        }
        try {
          const resealed = sealForStorage(masterKey, secret, label);
          await manager.query(`UPDATE ${table} SET ${sealed} = $2, ${versionColumn} = $3 WHERE ${id} = $1`, [row[id], resealed.sealed, resealed.masterKeyVersion]);
        } finally {
          secret.fill(0);
        }
        rewrapped += 1;
      }
      const last = rows.at(-1);
      return { rewrapped, damaged, cursor: rows.length < limit || !last ? null : [String(last[id])] };
    },
  };
}
