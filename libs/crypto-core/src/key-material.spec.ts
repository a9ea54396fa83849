import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyUnwrapError } from './errors';
import {
  type KeyMaterialBinding,
  type SymmetricAlgorithm,
  generateKeyMaterial,
  keyMaterialAad,
  unwrapKeyMaterial,
  wrapKeyMaterial,
} from './key-material';
import { randomBytes } from './random';

const binding: KeyMaterialBinding = {
  keyId: '5f0c3c0e-9b7a-4d55-8a0e-1a2b3c4d5e6f',
  version: 2,
  algorithm: 'aes-256-gcm',
  purpose: 'key-version',
};

describe('key material', () => {
  it('generates 32 fresh random bytes for aes-256-gcm, and refuses other algorithms', () => {
    const first = generateKeyMaterial('aes-256-gcm');
    assert.equal(first.length, 32);
    assert.notDeepEqual(first, generateKeyMaterial('aes-256-gcm'));
    assert.throws(() => generateKeyMaterial('des' as SymmetricAlgorithm), RangeError);
  });

  it('encodes the binding exactly as specified: label and fields, each uint32 BE length || UTF-8', () => {
    const expected =
      '000000176b6579686f6c64206b6579206d6174657269616c207631' + // "keyhold key material v1"
      '000000026b31' + // keyId "k1"
      '0000000137' + // version "7"
      '0000000b6165732d3235362d67636d' + // "aes-256-gcm"
      '0000000b6b65792d76657273696f6e'; // "key-version"
    const rowBinding = { keyId: 'k1', version: 7, algorithm: 'aes-256-gcm', purpose: 'key-version' };
    assert.equal(keyMaterialAad(rowBinding).toString('hex'), expected);
  });

  it('encodes bindings unambiguously (length-prefixed fields)', () => {
    const row = (keyId: string, version: number, algorithm: string, purpose: string): KeyMaterialBinding => ({
      keyId,
      version,
      algorithm,
      purpose,
    });
    const pairs: Array<[KeyMaterialBinding, KeyMaterialBinding]> = [
      [row('ab', 1, 'c', 'p'), row('a', 1, 'bc', 'p')],
      [row('a1', 2, 'x', 'p'), row('a', 12, 'x', 'p')],
      [row('a', 1, 'x', ''), row('a', 1, '', 'x')],
    ];
    for (const [a, b] of pairs) assert.notDeepEqual(keyMaterialAad(a), keyMaterialAad(b));
  });

  it('opens material wrapped by an independent implementation of the layout (Python cryptography, fixed IV)', () => {
    const kek = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
    const wrapped = Buffer.from(
      '0a0a0a0a0a0a0a0a0a0a0a0a' +
        'eb601dd2886c35b072c49ae72ff9fb63d250e64bea78013c91224d45ef7e83f8' +
        '126c3c0103e43a599e5f197438853bca',
      'hex',
    );
    const rowBinding = { keyId: 'k1', version: 7, algorithm: 'aes-256-gcm', purpose: 'key-version' };
    assert.deepEqual(unwrapKeyMaterial(kek, wrapped, rowBinding), Buffer.alloc(32, 0x42));
  });

  it('round-trips under the same binding', () => {
    const kek = randomBytes(32);
    const material = generateKeyMaterial('aes-256-gcm');
    assert.deepEqual(unwrapKeyMaterial(kek, wrapKeyMaterial(kek, material, binding), binding), material);
  });

  it('refuses material moved to another key id, version, algorithm or purpose, or opened with another KEK', () => {
    const kek = randomBytes(32);
    const wrapped = wrapKeyMaterial(kek, generateKeyMaterial('aes-256-gcm'), binding);
    const swapped: KeyMaterialBinding[] = [
      { ...binding, keyId: '00000000-0000-4000-8000-000000000000' },
      { ...binding, version: 3 },
      { ...binding, algorithm: 'hmac-sha256' },
      { ...binding, purpose: 'ca-key' },
    ];
    for (const other of swapped) {
      assert.throws(() => unwrapKeyMaterial(kek, wrapped, other), KeyUnwrapError, JSON.stringify(other));
    }
    assert.throws(() => unwrapKeyMaterial(randomBytes(32), wrapped, binding), KeyUnwrapError);
  });

  it('refuses a binding whose version is not a non-negative integer', () => {
    for (const version of [1.5, -1, Number.NaN, 2 ** 53]) {
      assert.throws(() => keyMaterialAad({ ...binding, version }), RangeError, String(version));
    }
  });
});
