import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ShamirSealFile, newShamirSealFile, parseShamirSealFile, serializeShamirSealFile, shamirSplitProblem } from './shamir-seal-file';

describe('the Shamir seal file', () => {
  const file = newShamirSealFile({ setId: 'a1b2c3d4', shares: 5, threshold: 3, checkValue: 'Y2hlY2s=' }, new Date('2026-01-01T00:00:00Z'));

  it('round-trips through its text form', () => {
    assert.deepEqual(file, {
      format: 'keyhold-shamir-master-key',
      version: 1,
      setId: 'a1b2c3d4',
      shares: 5,
      threshold: 3,
      checkValue: 'Y2hlY2s=',
      createdAt: '2026-01-01T00:00:00.000Z',
    });
    const text = serializeShamirSealFile(file);
    assert.ok(text.endsWith('}\n'));
    assert.deepEqual(parseShamirSealFile(text), file);
  });

  it('refuses anything else: not JSON, another format, an extra field (a share would be one), an impossible T of N', () => {
    const variants: unknown[] = [
      { ...file, format: 'keyhold-pkcs11-master-key' },
      { ...file, share: 'khs1-abc' },
      { ...file, threshold: 6 },
      { ...file, shares: 256, threshold: 3 },
      { ...file, threshold: 1 },
      { ...file, setId: 'A1B2C3D4' },
      { ...file, version: 0 },
      (({ checkValue: _dropped, ...rest }: ShamirSealFile) => rest)(file),
    ];
    assert.equal(parseShamirSealFile('{'), null);
    for (const variant of variants) assert.equal(parseShamirSealFile(JSON.stringify(variant)), null, JSON.stringify(variant));
  });

  it('names the first impossible parameter of a split, in the flags the command lines take', () => {
    assert.equal(shamirSplitProblem(5, 3), null);
    assert.equal(shamirSplitProblem(255, 255), null);
    assert.equal(shamirSplitProblem(2, 2), null);
    assert.match(shamirSplitProblem(1, 2) ?? '', /^--shares must be an integer from 2 to 255$/);
    assert.match(shamirSplitProblem(Number.NaN, 2) ?? '', /^--shares/);
    assert.match(shamirSplitProblem(5, 6) ?? '', /^--threshold must be an integer from 2 to --shares \(5\)$/);
    assert.match(shamirSplitProblem(5, 2.5) ?? '', /^--threshold/);
  });
});
