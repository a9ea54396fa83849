import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomBytes } from '@keyhold/crypto-core';
import { InMemoryMasterKey } from './master-key';
import { MasterKeyRing, MasterKeyRootMismatchError, type MasterKeyVersionRow, openKeyring, versionKeyLabel } from './master-key-ring';
import { SealState } from './seal-state';

const binding = { keyId: '00000000-0000-4000-8000-000000000001', version: 1, algorithm: 'aes-256-gcm' as const, purpose: 'key-version' as const };

function rootAndRows() {
  const root = new InMemoryMasterKey(randomBytes(32), 1, 'development-file');
  const v2 = randomBytes(32);
  const rows: MasterKeyVersionRow[] = [
    { version: 1, sealedKey: null, state: 'retiring' },
    { version: 2, sealedKey: root.seal(v2, versionKeyLabel(2)), state: 'active' },
  ];
  return { root, rows, v2 };
}

describe('openKeyring', () => {
  it('serves version 1 with the root, opens later versions with it, and wraps under the active one', () => {
    const { root, rows } = rootAndRows();
    const ring = openKeyring(root, rows);
    assert.equal(ring.current, 2);
    assert.equal(ring.keys.get(1), root);
    const wrapped = ring.keys.get(2)?.wrap(Buffer.alloc(32, 7), binding) as Buffer;
    assert.deepEqual(ring.keys.get(2)?.unwrap(wrapped, 2, binding), Buffer.alloc(32, 7));
    assert.throws(() => root.unwrap(wrapped, 2, binding));
  });

  it('leaves retired versions out', () => {
    const { root, rows } = rootAndRows();
    const ring = openKeyring(root, [{ ...rows[0], state: 'retired' }, rows[1]]);
    assert.deepEqual([...ring.keys.keys()], [2]);
  });

  it('refuses a root that does not open the sealed versions (a rekeyed root), or a row moved to another version', () => {
    const { rows } = rootAndRows();
    const other = new InMemoryMasterKey(randomBytes(32), 1, 'development-file');
    assert.throws(() => openKeyring(other, rows.slice(1)), MasterKeyRootMismatchError);
    const { root, rows: mine } = rootAndRows();
    assert.throws(() => openKeyring(root, [mine[0], { ...mine[1], version: 3 }]), MasterKeyRootMismatchError);
  });

  it('falls back to the root alone on a database with no versions yet', () => {
    const root = new InMemoryMasterKey(randomBytes(32), 1, 'development-file');
    assert.equal(openKeyring(root, []).current, 1);
  });
});

describe('MasterKeyRing', () => {
  it('answers SEALED until loaded, follows reloads, and forgets everything when sealed', async () => {
    const { root, rows } = rootAndRows();
    const state = new SealState('development-file', root);
    let current: MasterKeyVersionRow[] = rows.slice(0, 1).map((row) => ({ ...row, state: 'active' }));
    const ring = new MasterKeyRing(state, async () => current);
    assert.throws(() => ring.version, /sealed/i);
    await ring.load();
    assert.equal(ring.version, 1);
    const sealed = ring.seal(Buffer.from('ca key'), 'label');
    current = rows;
    await ring.load();
    assert.equal(ring.version, 2);
    assert.deepEqual(ring.open(sealed, 1, 'label'), Buffer.from('ca key'));
    assert.throws(() => ring.open(sealed, 2, 'label'));
    assert.throws(() => ring.unwrap(Buffer.alloc(60), 7, binding), /not live/);
    await state.seal();
    ring.clear();
    assert.throws(() => ring.version, /sealed/i);
  });

  it('keeps the newest read when loads overlap: an older read answering last changes nothing', async () => {
    const { root, rows } = rootAndRows();
    const state = new SealState('development-file', root);
    const answers: Array<(value: MasterKeyVersionRow[]) => void> = [];
    const ring = new MasterKeyRing(state, () => new Promise((resolve) => answers.push(resolve)));
    const older = ring.load(); // reads before the rotation
    const newer = ring.load(); // reads after it
    answers[1](rows);
    await newer;
    answers[0]([{ ...rows[0], state: 'active' }]);
    await older;
    assert.equal(ring.version, 2, 'the rotation is not undone');
  });

  it('builds nothing on a root that was sealed (and unsealed again) while the versions were read', async () => {
    const { root, rows } = rootAndRows();
    const state = new SealState('development-file', root);
    let answer: (value: MasterKeyVersionRow[]) => void = () => undefined;
    const ring = new MasterKeyRing(state, () => new Promise((resolve) => (answer = resolve)));
    const loading = ring.load();
    await state.seal();
    await state.unseal(new InMemoryMasterKey(randomBytes(32), 1, 'development-file'));
    answer(rows);
    await loading;
    assert.throws(() => ring.version, /sealed/i, 'no keyring from the disposed root');
  });

  it('reloads when a row names a version created elsewhere since the last load (its NOTIFY not arrived yet)', async () => {
    const { root, rows } = rootAndRows();
    const state = new SealState('development-file', root);
    let current: MasterKeyVersionRow[] = [{ ...rows[0], state: 'active' }];
    let reads = 0;
    const ring = new MasterKeyRing(state, async () => {
      reads += 1;
      return current;
    });
    await ring.load();
    await ring.ensureVersions([1]);
    assert.equal(reads, 1, 'nothing to reload for a known version');
    current = rows;
    await Promise.all([ring.ensureVersions([1, 2]), ring.ensureVersions([2])]);
    assert.equal(reads, 2, 'concurrent callers share one reload');
    assert.deepEqual(ring.liveVersions(), [1, 2]);
    await ring.ensureVersions([7]);
    assert.equal(reads, 3);
  });
});
