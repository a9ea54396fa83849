import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  SHARE_PREFIX,
  ShareFormatError,
  combineShares,
  decodeShare,
  keyCheckValue,
  matchesKeyCheckValue,
  splitMasterKey,
  splitSecret,
} from './shamir';

describe('Shamir shares of a 32-byte key', () => {
  const secret = randomBytes(32);
  const setId = 'a1b2c3d4';

  it('any 3 of 5 rebuild the key; 2 do not', async () => {
    const shares = (await splitSecret(secret, 5, 3, setId)).map((text) => decodeShare(text));
    assert.equal(new Set(shares.map((share) => share.index)).size, 5);
    for (const pick of [[0, 1, 2], [0, 2, 4], [4, 3, 1], [1, 2, 3, 4]]) {
      assert.deepEqual(await combineShares(pick.map((i) => shares[i])), secret);
    }
    assert.notDeepEqual(await combineShares([shares[0], shares[1]]), secret);
  });

  it('text shares carry the set id and a checksum; any typo or truncation is malformed', async () => {
    const [text] = await splitSecret(secret, 5, 3, setId);
    assert.ok(text.startsWith(SHARE_PREFIX));
    assert.equal(decodeShare(text).setId, setId);
    const body = text.slice(SHARE_PREFIX.length);
    const flipped = `${SHARE_PREFIX}${body.slice(0, 10)}${body[10] === 'A' ? 'B' : 'A'}${body.slice(11)}`;
    for (const bad of [flipped, text.slice(0, -3), `${text}AA`, 'hello', '', `khs2-${body}`, `${SHARE_PREFIX}${body.slice(0, 20)}!${body.slice(21)}`, 42, null]) {
      assert.throws(() => decodeShare(bad), ShareFormatError, String(bad));
    }
  });

  it('refuses impossible parameters', async () => {
    await assert.rejects(splitSecret(secret, 1, 1, setId), RangeError);
    await assert.rejects(splitSecret(secret, 5, 6, setId), RangeError);
    await assert.rejects(splitSecret(secret, 256, 3, setId), RangeError);
    await assert.rejects(splitSecret(secret, 5, 3, 'xyz'), RangeError);
  });

  it('the check value recognises the key and no other', () => {
    const kcv = keyCheckValue(secret, setId);
    assert.ok(matchesKeyCheckValue(secret, setId, kcv));
    assert.ok(!matchesKeyCheckValue(randomBytes(32), setId, kcv));
    assert.ok(!matchesKeyCheckValue(secret, 'ffffffff', kcv));
    assert.ok(!kcv.includes(secret.subarray(0, 8)));
  });

  it('splitMasterKey: a given key is split and checked, and left to its owner; a new one differs every time', async () => {
    const given = Buffer.from(secret);
    const split = await splitMasterKey(5, 3, given);
    assert.deepEqual(given, secret, 'a given key is not zeroed: the caller still needs it');
    assert.match(split.verifier.setId, /^[0-9a-f]{8}$/);
    assert.deepEqual({ shares: split.verifier.shares, threshold: split.verifier.threshold }, { shares: 5, threshold: 3 });
    assert.ok(matchesKeyCheckValue(secret, split.verifier.setId, Buffer.from(split.verifier.checkValue, 'base64')));
    const decoded = split.shares.map((text) => decodeShare(text));
    assert.ok(decoded.every((share) => share.setId === split.verifier.setId));
    assert.deepEqual(await combineShares(decoded.slice(2)), secret);

    const [a, b] = await Promise.all([splitMasterKey(2, 2), splitMasterKey(2, 2)]);
    assert.notEqual(a.verifier.setId, b.verifier.setId);
    assert.notDeepEqual(await combineShares(a.shares.map((text) => decodeShare(text))), await combineShares(b.shares.map((text) => decodeShare(text))));
    await assert.rejects(splitMasterKey(2, 3), RangeError);
  });
});
