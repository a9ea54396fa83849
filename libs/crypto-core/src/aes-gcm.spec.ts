import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { aesGcmOpen, aesGcmSeal } from './aes-gcm';
import { KeyUnwrapError } from './errors';

const aad = Buffer.from('associated data');

describe('aes-256-gcm seal/open', () => {
  it('opens the published AES-256-GCM vector laid out as iv || ciphertext || tag (McGrew-Viega test case 14)', () => {
    const iv = '000000000000000000000000';
    const sealed = Buffer.from(iv + 'cea7403d4d606b6e074ec5d3baf39d18' + 'd0d1c8a799996bf0265b98b5d48ab919', 'hex');
    assert.deepEqual(aesGcmOpen(Buffer.alloc(32), sealed, Buffer.alloc(0)), Buffer.alloc(16));
  });

  it('round-trips, with a fresh random IV for every seal', () => {
    const key = randomBytes(32);
    for (const plaintext of [Buffer.alloc(0), randomBytes(1000)]) {
      const first = aesGcmSeal(key, plaintext, aad);
      const second = aesGcmSeal(key, plaintext, aad);
      assert.equal(first.length, 12 + plaintext.length + 16);
      assert.notDeepEqual(first.subarray(0, 12), second.subarray(0, 12));
      assert.deepEqual(aesGcmOpen(key, first, aad), plaintext);
    }
  });

  it('refuses every single-bit flip and every truncation with KeyUnwrapError', () => {
    const key = randomBytes(32);
    const sealed = aesGcmSeal(key, Buffer.from('secret'), aad);
    for (let i = 0; i < sealed.length; i += 1) {
      for (let bit = 0; bit < 8; bit += 1) {
        const altered = Buffer.from(sealed);
        altered[i] ^= 1 << bit;
        assert.throws(() => aesGcmOpen(key, altered, aad), KeyUnwrapError, `byte ${i} bit ${bit}`);
      }
    }
    for (let length = 0; length < sealed.length; length += 1) {
      assert.throws(() => aesGcmOpen(key, sealed.subarray(0, length), aad), KeyUnwrapError, `length ${length}`);
    }
  });

  it('refuses other associated data or another key with KeyUnwrapError', () => {
    const key = randomBytes(32);
    const sealed = aesGcmSeal(key, Buffer.from('secret'), aad);
    assert.throws(() => aesGcmOpen(key, sealed, Buffer.from('associated datA')), KeyUnwrapError);
    assert.throws(() => aesGcmOpen(key, sealed, Buffer.alloc(0)), KeyUnwrapError);
    assert.throws(() => aesGcmOpen(randomBytes(32), sealed, aad), KeyUnwrapError);
  });

  it('refuses keys that are not 32 bytes with RangeError (a caller bug, not bad data)', () => {
    for (const key of [Buffer.alloc(0), randomBytes(16), randomBytes(33)]) {
      assert.throws(() => aesGcmSeal(key, Buffer.alloc(1), aad), RangeError);
      assert.throws(() => aesGcmOpen(key, Buffer.alloc(40), aad), RangeError);
    }
  });
});
