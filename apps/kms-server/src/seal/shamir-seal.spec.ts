import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ApiError } from '@keyhold/contracts';
import { decodeShare, randomBytes, splitSecret } from '@keyhold/crypto-core';
import { SealState } from './seal-state';
import { ShamirUnsealer, initShamirMasterKey, readShamirSealFile } from './shamir-seal';

const binding = { keyId: '00000000-0000-4000-8000-000000000001', version: 1, algorithm: 'aes-256-gcm', purpose: 'key-version' };

describe('ShamirUnsealer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-shamir-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a verifier file (mode 600) that holds no share and refuses to overwrite', async () => {
    const path = join(dir, 'v.json');
    const { shares } = await initShamirMasterKey(path, 5, 3);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const text = readFileSync(path, 'utf8');
    for (const share of shares) assert.ok(!text.includes(share.slice(5, 30)));
    assert.equal(readShamirSealFile(path).threshold, 3);
    await assert.rejects(initShamirMasterKey(path, 5, 3), /EEXIST/);
  });

  it('forgets collected shares after the timeout, and a sealed state refuses key use', async () => {
    const path = join(dir, 't.json');
    const { shares } = await initShamirMasterKey(path, 5, 3);
    let now = 1_000_000;
    const state = new SealState('shamir', null);
    assert.throws(() => state.masterKey(), (error: ApiError) => error.code === 'SEALED');
    const unsealer = new ShamirUnsealer(readShamirSealFile(path), state, 60_000, () => now);
    assert.equal((await unsealer.submit(shares[0])).received, 1);
    assert.equal((await unsealer.submit(shares[1])).received, 2);
    now += 60_000;
    assert.equal(unsealer.progress().received, 0);
    assert.equal((await unsealer.submit(shares[2])).received, 1);
    assert.equal((await unsealer.submit(shares[3])).received, 2);
    const done = await unsealer.submit(shares[4]);
    assert.deepEqual(done, { sealed: false, protection: 'shamir', threshold: 3, shares: 5, received: 0 });
    const key = state.masterKey();
    const wrapped = key.wrap(Buffer.alloc(32, 7), binding);
    assert.deepEqual(key.unwrap(wrapped, 1, binding), Buffer.alloc(32, 7));
    await assert.rejects(unsealer.submit(shares[0]), (error: ApiError) => error.code === 'INVALID_STATE');
    await state.seal();
    assert.ok(state.sealed);
    assert.throws(() => key.wrap(Buffer.alloc(32), binding), /disposed/);
  });

  it('concurrent submissions are counted one at a time; a wrong combination clears them all', async () => {
    const path = join(dir, 'c.json');
    const { file, shares } = await initShamirMasterKey(path, 5, 3);
    const forged = await splitSecret(randomBytes(32), 5, 3, file.setId);
    const held = new Set([shares[0], shares[1]].map((share) => decodeShare(share).index));
    const wrong = forged.find((share) => !held.has(decodeShare(share).index)) as string;
    const state = new SealState('shamir', null);
    const unsealer = new ShamirUnsealer(file, state);
    const results = await Promise.allSettled([unsealer.submit(shares[0]), unsealer.submit(shares[1]), unsealer.submit(wrong)]);
    assert.equal(results.filter((r) => r.status === 'rejected').length, 1);
    assert.match(String((results[2] as PromiseRejectedResult).reason.message), /do not rebuild the master key/);
    assert.equal(unsealer.progress().received, 0);
    assert.ok(state.sealed);
    unsealer.clear();
  });

  it('a different share with the number of one already held is refused and not counted; an identical one is a duplicate', async () => {
    const { file, shares } = await initShamirMasterKey(join(dir, 'd.json'), 5, 3);
    const index = decodeShare(shares[0]).index;
    let clash: string | undefined;
    for (let attempt = 0; attempt < 3000 && !clash; attempt += 1) {
      clash = (await splitSecret(randomBytes(32), 5, 3, file.setId)).find((share) => decodeShare(share).index === index);
    }
    assert.ok(clash, 'no forged share with that number in 3000 splits');
    const unsealer = new ShamirUnsealer(file, new SealState('shamir', null));
    await unsealer.submit(shares[0]);
    await assert.rejects(unsealer.submit(clash), (error: ApiError) => error.code === 'VALIDATION_FAILED' && /same share number/.test(error.message));
    await assert.rejects(unsealer.submit(shares[0]), (error: ApiError) => error.code === 'INVALID_STATE');
    assert.equal(unsealer.progress().received, 1);
    unsealer.clear();
  });
});
