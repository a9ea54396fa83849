import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomBytes, randomPublicBytes, randomToken, randomUuid } from './random';

describe('randomness', () => {
  it('randomBytes returns the requested length, fresh on every call', () => {
    assert.equal(randomBytes(0).length, 0);
    assert.equal(randomBytes(48).length, 48);
    assert.notDeepEqual(randomBytes(32), randomBytes(32));
  });

  it('randomPublicBytes never hands the same bytes out twice, across refills of its pool, and copies them out', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i += 1) {
      const salt = randomPublicBytes(32);
      assert.equal(salt.length, 32);
      seen.add(salt.toString('hex'));
    }
    assert.equal(seen.size, 1000, 'a thousand 32-byte values (eight refills of the pool), all different');
    const first = randomPublicBytes(16);
    const copy = Buffer.from(first);
    first.fill(0);
    assert.notDeepEqual(randomPublicBytes(16), Buffer.alloc(16), 'what a caller does with its bytes reaches no later value');
    assert.notDeepEqual(copy, Buffer.alloc(16));
    assert.equal(randomPublicBytes(0).length, 0);
    for (const length of [-1, 1.5, 257]) assert.throws(() => randomPublicBytes(length), RangeError);
  });

  it('randomToken is base64url without padding, 32 bytes of entropy by default', () => {
    const token = randomToken();
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(token, 'base64url').length, 32);
    assert.match(randomToken(16), /^[A-Za-z0-9_-]{22}$/);
    assert.notEqual(randomToken(), randomToken());
  });

  it('randomUuid is a lower-case version 4 UUID', () => {
    assert.match(randomUuid(), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.notEqual(randomUuid(), randomUuid());
  });
});
