import type { DataSource } from 'typeorm';
import { KeyUnwrapError } from '@keyhold/crypto-core';
import type { MasterKey } from '../seal/master-key';
import { versionKeyLabel } from '../seal/master-key-ring';
import { MASTER_KEY_CHANGED_CHANNEL } from './master-key.service';

export class RekeyRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RekeyRefusedError';
  }
}

type Row = Record<string, unknown>;

/**
 * Replaces the root of trust: every live master-key version's key is opened with the old root and sealed
 * again under the new one, in one transaction. With the old root destroyed afterwards (the old key file and
 * passphrase, the old shares, the old token key), a database backup taken before is sealed under a root that
 * no longer exists: what it holds, including versions since retired, cannot be opened any more.
 *
 * Refused while version 1, which is the root itself, is live (material under it would be lost): rotate, let
 * the rewrap finish and retire version 1 first. `persistNewRoot` writes the new sealer's artefact (a new
 * file, never over the old one); it runs inside the transaction, so the database never points at a root that
 * was not written; if the commit then fails, the caller removes what it wrote.
 */
export async function rekeyRoot(
  dataSource: DataSource,
  oldRoot: MasterKey,
  newRoot: MasterKey,
  persistNewRoot: () => Promise<void>,
): Promise<{ resealed: number[] }> {
  return dataSource.transaction(async (manager) => {
    // No rotation or retirement meanwhile (they take SHARE ROW EXCLUSIVE / FOR UPDATE).
    await manager.query('LOCK TABLE keyhold_master_key_versions IN EXCLUSIVE MODE');
    const rows: Row[] = await manager.query(
      `SELECT version, sealed_key, state FROM keyhold_master_key_versions WHERE state <> 'retired' ORDER BY version`,
    );
    const servedByRoot = rows.filter((row) => row.sealed_key === null).map((row) => row.version as number);
    if (servedByRoot.length > 0) {
      throw new RekeyRefusedError(
        `master key version ${servedByRoot.join(', ')} is the root itself and still live: rotate the master key, wait until GET /api/v1/master-key shows nothing remaining, retire version ${servedByRoot[0]}, then rekey`,
      );
    }
    if (rows.length === 0) throw new RekeyRefusedError('no live master-key version (is this the right database?)');
    const resealed: number[] = [];
    for (const row of rows) {
      const version = row.version as number;
      let key: Buffer;
      try {
        key = oldRoot.open(row.sealed_key as Buffer, oldRoot.version, versionKeyLabel(version));
      } catch (error) {
        if (error instanceof KeyUnwrapError) {
          throw new RekeyRefusedError(`the current root does not open master key version ${version}: it is not this database's root (already rekeyed?)`);
        }
        throw error;
      }
      try {
        await manager.query(`UPDATE keyhold_master_key_versions SET sealed_key = $2 WHERE version = $1`, [
          version,
          newRoot.seal(key, versionKeyLabel(version)),
        ]);
      } finally {
        key.fill(0);
      }
      resealed.push(version);
    }
    await persistNewRoot();
    // Running instances keep the versions they opened; they are told so that they log the change.
    await manager.query('SELECT pg_notify($1, $2)', [MASTER_KEY_CHANGED_CHANNEL, 'rekeyed']);
    return { resealed };
  });
}
