import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomBytes, randomToken, randomUuid } from './random';

describe('randomness', () => {
  it('randomBytes returns the requested length, fresh on every call', () => {
    assert.equal(randomBytes(0).length, 0);
    assert.equal(randomBytes(48).length, 48);
    assert.notDeepEqual(randomBytes(32), randomBytes(32));
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
