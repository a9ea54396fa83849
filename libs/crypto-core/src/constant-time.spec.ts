import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { constantTimeEqual, hmacSha256, sha256 } from './constant-time';

describe('constant-time comparison and hashes', () => {
  it('constantTimeEqual: true only for equal bytes, false on any difference or length mismatch', () => {
    assert.equal(constantTimeEqual(Buffer.from('abc'), Buffer.from('abc')), true);
    assert.equal(constantTimeEqual(new Uint8Array(0), new Uint8Array(0)), true);
    assert.equal(constantTimeEqual(Buffer.from('abc'), Buffer.from('abd')), false);
    assert.equal(constantTimeEqual(Buffer.from('abc'), Buffer.from('abcd')), false);
    assert.equal(constantTimeEqual(Buffer.from('abcd'), Buffer.from('abc')), false);
  });

  it('sha256 matches FIPS 180-2 ("abc") and hashes strings as UTF-8', () => {
    assert.equal(sha256('abc').toString('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    assert.deepEqual(sha256('é'), sha256(Buffer.from([0xc3, 0xa9])));
  });

  it('hmacSha256 matches RFC 4231 test case 2', () => {
    assert.equal(
      hmacSha256(Buffer.from('Jefe'), 'what do ya want for nothing?').toString('hex'),
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
  });
});
