import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EntityManager } from 'typeorm';
import { keyVersionBinding } from '../../src/keyring/key-version-binding';
import { auditKeysRewrapTarget } from '../../src/audit/audit-keys';
import { type RewrapTarget, keyVersionsTarget } from '../../src/master-key/rewrap-targets';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

/**
 * The rewrap job awaits Postgres between rows; meanwhile the keyring can move to a newer master-key version (a
 * second rotation noticed through NOTIFY or the periodic resync). Each row must be stored under the version that
 * actually wrapped it, or it never opens again.
 */
describe('master-key rewrap while the active version changes under it', () => {
  let kh: TestKeyhold;
  before(async () => {
    kh = await startTestKeyhold();
    for (const name of ['race-a', 'race-b', 'race-c']) await kh.http().post('/v1/keys').send({ name, algorithm: 'aes-256-gcm' }).expect(201);
  });
  after(() => kh.stop());

  /** One batch of `target` with a second rotation landing just after its first row was wrapped. */
  async function rewrapAcrossARotation(target: RewrapTarget): Promise<void> {
    const ring = kh.server.masterKey.ring;
    const service = kh.server.masterKey.service;
    let rotatedAgain = false;
    await kh.dataSource.transaction(async (manager: EntityManager) => {
      const interleaved = {
        query: async (sql: string, parameters?: unknown[]) => {
          if (!rotatedAgain && sql.trimStart().startsWith('UPDATE')) {
            rotatedAgain = true;
            await service.rotate();
            await ring.load();
          }
          return manager.query(sql, parameters);
        },
      };
      const result = await target.rewrapBatch(interleaved, ring, 100, null);
      assert.equal(result.damaged, 0);
      assert.ok(result.rewrapped >= 2, `${target.name}: at least two rows, so that one is wrapped after the rotation`);
    });
    assert.equal(rotatedAgain, true);
  }

  it('stores each key version under the master-key version that wrapped it, even when a rotation lands between two rows', async () => {
    const ring = kh.server.masterKey.ring;
    await kh.server.masterKey.service.rotate();
    await ring.load();
    const rotatingTo = ring.version;
    await rewrapAcrossARotation(keyVersionsTarget);
    assert.equal(ring.version, rotatingTo + 1);

    const rows: Array<Record<string, unknown>> = await kh.dataSource.query(
      `SELECT kv.key_id, kv.version, kv.wrapped_material, kv.master_key_version, k.algorithm
         FROM keyhold_key_versions kv JOIN keyhold_keys k ON k.id = kv.key_id WHERE k.name LIKE 'race-%'`,
    );
    assert.equal(rows.length, 3);
    for (const row of rows) {
      const binding = keyVersionBinding({ id: row.key_id as string, algorithm: row.algorithm as never }, row.version as number);
      assert.doesNotThrow(() => ring.unwrap(row.wrapped_material as Buffer, row.master_key_version as number, binding).fill(0), `row under version ${row.master_key_version}`);
    }
    const versions = new Set(rows.map((row) => row.master_key_version));
    assert.deepEqual([...versions].sort(), [rotatingTo, rotatingTo + 1], 'the rows wrapped after the second rotation are stored under it');
  });

  it('does the same for sealed secrets (the audit keys), and the rewrap then finds nothing damaged anywhere', async () => {
    await kh.server.masterKey.service.rotate();
    await kh.server.masterKey.ring.load();
    await rewrapAcrossARotation(auditKeysRewrapTarget);
    await kh.server.masterKey.rewrap.runOnce();
    const pass = kh.server.masterKey.rewrap.status().lastPass;
    assert.equal(pass?.error, null);
    assert.equal(pass?.damaged, 0);
    const [{ behind }] = await kh.dataSource.query(
      `SELECT (SELECT count(*) FROM keyhold_key_versions WHERE master_key_version < $1 AND wrapped_material IS NOT NULL)
            + (SELECT count(*) FROM keyhold_audit_keys WHERE master_key_version < $1)
            + (SELECT count(*) FROM keyhold_certificate_authority WHERE master_key_version < $1) AS behind`,
      [kh.server.masterKey.ring.version],
    );
    assert.equal(Number(behind), 0);
    await kh.http().post('/v1/keys/race-a/encrypt').send({ plaintext: 'aGk=' }).expect(200);
  });
});
