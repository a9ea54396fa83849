import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomBytes } from '@keyhold/crypto-core';
import type { Key, KeyRepository, WrappedVersionMaterial } from '@keyhold/key-lifecycle';
import { InMemoryMasterKey } from '../seal/master-key';
import { MasterKeyRing, type MasterKeyVersionRow, versionKeyLabel } from '../seal/master-key-ring';
import { SealState } from '../seal/seal-state';
import { keyVersionBinding } from './key-version-binding';
import { KeyringCache } from './keyring-cache';

const key = { id: '00000000-0000-4000-8000-0000000000aa', name: 'orders', algorithm: 'aes-256-gcm', versions: [] } as unknown as Key;

/** A real keyring (version 1 retired here, version 2 active) and rows whose reads the test scripts. */
async function keyringAndRows() {
  const root = new InMemoryMasterKey(randomBytes(32), 1, 'development-file');
  const rows: MasterKeyVersionRow[] = [
    { version: 1, sealedKey: null, state: 'retired' },
    { version: 2, sealedKey: root.seal(randomBytes(32), versionKeyLabel(2)), state: 'active' },
  ];
  const ring = new MasterKeyRing(new SealState('development-file', root), async () => rows);
  await ring.load();
  const wrappedUnderV2 = ring.wrap(randomBytes(32), keyVersionBinding(key, 1));
  return { ring, wrappedUnderV2 };
}

function repositoryReading(reads: Array<WrappedVersionMaterial[]>): KeyRepository & { loads: number } {
  const repository = {
    loads: 0,
    findByName: async () => key,
    loadMaterial: async () => reads[Math.min(repository.loads++, reads.length - 1)],
  };
  return repository as unknown as KeyRepository & { loads: number };
}

describe('KeyringCache', () => {
  it('reads the rows once more when one names a master-key version retired here meanwhile (rewrapped since), instead of calling it damaged', async () => {
    const { ring, wrappedUnderV2 } = await keyringAndRows();
    // First read: the row as it was before the rewrap moved it from version 1 (retired here since) to version 2.
    const repository = repositoryReading([
      [{ version: 1, wrapped: Buffer.alloc(60), masterKeyVersion: 1 }],
      [{ version: 1, wrapped: wrappedUnderV2, masterKeyVersion: 2 }],
    ]);
    const cache = new KeyringCache(repository, ring, { ttlMs: 60_000, maxKeys: 10 });
    const loaded = await cache.get('orders');
    assert.equal(repository.loads, 2);
    assert.deepEqual([...(loaded?.damagedVersions ?? [])], []);
    assert.ok(loaded?.versionKeys.has(1));
  });

  it('still reports bytes that fail their integrity check as damaged, after one read', async () => {
    const { ring } = await keyringAndRows();
    const repository = repositoryReading([[{ version: 1, wrapped: Buffer.alloc(60), masterKeyVersion: 2 }]]);
    const cache = new KeyringCache(repository, ring, { ttlMs: 60_000, maxKeys: 10 });
    const loaded = await cache.get('orders');
    assert.equal(repository.loads, 1);
    assert.deepEqual([...(loaded?.damagedVersions ?? [])], [1]);
  });
  it('remembers names that are no key apart: asking for many of them never pushes real keys out', async () => {
    const { ring, wrappedUnderV2 } = await keyringAndRows();
    const lookups: string[] = [];
    const repository = {
      findByName: async (name: string) => (lookups.push(name), name === 'orders' ? key : null),
      loadMaterial: async () => [{ version: 1, wrapped: wrappedUnderV2, masterKeyVersion: 2 }],
    } as unknown as KeyRepository;
    const cache = new KeyringCache(repository, ring, { ttlMs: 60_000, maxKeys: 2 });
    assert.ok(await cache.get('orders'));
    for (let i = 0; i < 50; i += 1) assert.equal(await cache.get(`no-such-key-${i}`), null);
    assert.ok(await cache.get('orders'));
    assert.equal(lookups.filter((name) => name === 'orders').length, 1, 'the real key stayed cached');
    assert.equal(await cache.get('no-such-key-49'), null);
    assert.equal(lookups.filter((name) => name === 'no-such-key-49').length, 1, 'a miss is remembered for a moment too');
  });
});
