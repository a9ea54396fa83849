import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aesGcmOpen, aesGcmSeal } from './aes-gcm';
import { constantTimeEqual } from './constant-time';
import { KeyUnwrapError } from './errors';
import { generateKeyMaterial, keyMaterialAad, unwrapKeyMaterial, wrapKeyMaterial } from './key-material';
import { randomBytes } from './random';

const binding = { keyId: '5f0c3c0e-9b7a-4d55-8a0e-1a2b3c4d5e6f', version: 2, algorithm: 'aes-256-gcm', purpose: 'key-version' };

describe('key material wrapping', () => {
  it('round-trips under the same binding', () => {
    const kek = randomBytes(32);
    const material = generateKeyMaterial('aes-256-gcm');
    assert.equal(material.length, 32);
    assert.deepEqual(unwrapKeyMaterial(kek, wrapKeyMaterial(kek, material, binding), binding), material);
  });

  it('refuses material moved to another key, version, algorithm or purpose', () => {
    const kek = randomBytes(32);
    const wrapped = wrapKeyMaterial(kek, generateKeyMaterial('aes-256-gcm'), binding);
    for (const other of [
      { ...binding, keyId: '00000000-0000-4000-8000-000000000000' },
      { ...binding, version: 3 },
      { ...binding, algorithm: 'hmac-sha256' },
      { ...binding, purpose: 'ca-key' },
    ]) {
      assert.throws(() => unwrapKeyMaterial(kek, wrapped, other), KeyUnwrapError);
    }
    assert.throws(() => unwrapKeyMaterial(randomBytes(32), wrapped, binding), KeyUnwrapError);
  });

  it('encodes bindings unambiguously (length-prefixed fields)', () => {
    const a = keyMaterialAad({ keyId: 'ab', version: 1, algorithm: 'c', purpose: 'p' });
    const b = keyMaterialAad({ keyId: 'a', version: 1, algorithm: 'bc', purpose: 'p' });
    assert.notDeepEqual(a, b);
  });

  it('refuses altered or short sealed data with KeyUnwrapError', () => {
    const kek = randomBytes(32);
    const sealed = aesGcmSeal(kek, Buffer.from('secret'), Buffer.from('aad'));
    for (let i = 0; i < sealed.length; i += 1) {
      const copy = Buffer.from(sealed);
      copy[i] ^= 0x80;
      assert.throws(() => aesGcmOpen(kek, copy, Buffer.from('aad')), KeyUnwrapError);
    }
    assert.throws(() => aesGcmOpen(kek, sealed.subarray(0, 20), Buffer.from('aad')), KeyUnwrapError);
    assert.throws(() => aesGcmOpen(kek, sealed, Buffer.from('other')), KeyUnwrapError);
    assert.throws(() => aesGcmSeal(randomBytes(16), Buffer.alloc(1), Buffer.alloc(0)), RangeError);
  });

  it('compares in constant time, false on length mismatch', () => {
    assert.equal(constantTimeEqual(Buffer.from('abc'), Buffer.from('abc')), true);
    assert.equal(constantTimeEqual(Buffer.from('abc'), Buffer.from('abd')), false);
    assert.equal(constantTimeEqual(Buffer.from('abc'), Buffer.from('abcd')), false);
  });
});
