import assert from 'node:assert/strict';
import { createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  canonicalContext,
  decryptMessage,
  encryptMessage,
  encryptMessageWithSalt,
  parseCiphertext,
} from './ciphertext-format';
import { InvalidCiphertextError } from './errors';

interface Vector {
  description: string;
  key: string;
  salt: string;
  keyName: string;
  keyVersion: number;
  plaintext: string;
  context: Record<string, string> | null;
  ciphertext: string;
}

// dist/ciphertext-format.spec.js -> ../test-vectors
const vectors: Vector[] = JSON.parse(readFileSync(join(__dirname, '..', 'test-vectors', 'ciphertext-v1.json'), 'utf8')).vectors;

/** The layout of docs/ciphertext-format.md, decrypted with nothing but node:crypto, independent of the code under test. */
function decryptByTheDocument(key: Buffer, ciphertext: string, context: Record<string, string> | null): Buffer {
  const lastColon = ciphertext.lastIndexOf(':');
  const header = Buffer.from(ciphertext.slice(0, lastColon + 1), 'utf8');
  const body = Buffer.from(ciphertext.slice(lastColon + 1), 'base64');
  const salt = body.subarray(0, 32);
  const okm = Buffer.from(hkdfSync('sha256', key, salt, Buffer.concat([Buffer.from('keyhold/ciphertext/v1\0'), header]), 76));
  assert.deepEqual(body.subarray(32, 64), okm.subarray(44, 76), 'commitment');
  const decipher = createDecipheriv('aes-256-gcm', okm.subarray(0, 32), okm.subarray(32, 44));
  const entries = context ? Object.keys(context).sort().map((k) => [k, context[k]]) : [];
  decipher.setAAD(Buffer.concat([header, entries.length ? Buffer.from(JSON.stringify(entries)) : Buffer.alloc(0)]));
  decipher.setAuthTag(body.subarray(body.length - 16));
  return Buffer.concat([decipher.update(body.subarray(64, body.length - 16)), decipher.final()]);
}

const key = randomBytes(32);
const header = { keyName: 'payments', keyVersion: 3 };

describe('ciphertext format kh1', () => {
  describe('known answers', () => {
    for (const vector of vectors) {
      it(vector.description, () => {
        const vectorKey = Buffer.from(vector.key, 'hex');
        const made = encryptMessageWithSalt(
          vectorKey,
          { keyName: vector.keyName, keyVersion: vector.keyVersion },
          Buffer.from(vector.plaintext, 'hex'),
          vector.context ?? undefined,
          Buffer.from(vector.salt, 'hex'),
        );
        assert.equal(made, vector.ciphertext);
        const parsed = parseCiphertext(vector.ciphertext);
        assert.equal(decryptMessage(vectorKey, parsed, vector.context ?? undefined).toString('hex'), vector.plaintext);
        assert.equal(decryptByTheDocument(vectorKey, vector.ciphertext, vector.context).toString('hex'), vector.plaintext);
      });
    }
  });

  it('round-trips the empty plaintext and 32 KiB', () => {
    for (const plaintext of [Buffer.alloc(0), randomBytes(32 * 1024)]) {
      const ciphertext = encryptMessage(key, header, plaintext, { a: 'b' });
      assert.deepEqual(decryptMessage(key, parseCiphertext(ciphertext), { a: 'b' }), plaintext);
    }
  });

  it('never repeats: two encryptions of the same plaintext differ', () => {
    assert.notEqual(encryptMessage(key, header, Buffer.from('same')), encryptMessage(key, header, Buffer.from('same')));
  });

  it('fails on every single-bit flip of the body, and every truncation', () => {
    const ciphertext = encryptMessage(key, header, Buffer.from('flip me'));
    const parsed = parseCiphertext(ciphertext);
    for (let i = 0; i < parsed.body.length; i += 1) {
      for (let bit = 0; bit < 8; bit += 1) {
        const body = Buffer.from(parsed.body);
        body[i] ^= 1 << bit;
        assert.throws(() => decryptMessage(key, { ...parsed, body }), InvalidCiphertextError);
      }
    }
    for (let length = 0; length < parsed.body.length; length += 1) {
      assert.throws(() => decryptMessage(key, { ...parsed, body: parsed.body.subarray(0, length) }), InvalidCiphertextError);
    }
  });

  it('binds the header: another key name or version fails', () => {
    const ciphertext = encryptMessage(key, header, Buffer.from('x'));
    const body = ciphertext.split(':')[3];
    for (const altered of [`kh1:payment:3:${body}`, `kh1:payments:4:${body}`]) {
      assert.throws(() => decryptMessage(key, parseCiphertext(altered)), InvalidCiphertextError);
    }
  });

  it('binds the context: missing, extra or changed entries fail; order does not matter', () => {
    const ciphertext = encryptMessage(key, header, Buffer.from('x'), { tenant: 'acme', purpose: 'pay' });
    const parsed = parseCiphertext(ciphertext);
    assert.equal(decryptMessage(key, parsed, { purpose: 'pay', tenant: 'acme' }).toString(), 'x');
    const contexts: Array<Record<string, string> | undefined> = [undefined, {}, { tenant: 'acme' }, { tenant: 'acme', purpose: 'pay', x: '' }, { tenant: 'acme', purpose: 'PAY' }];
    for (const context of contexts) {
      assert.throws(() => decryptMessage(key, parsed, context), InvalidCiphertextError);
    }
    assert.deepEqual(canonicalContext({ b: '2', a: '1' }), canonicalContext({ a: '1', b: '2' }));
    assert.equal(canonicalContext({}).length, 0);
    assert.notDeepEqual(canonicalContext({ a: 'b,c' }), canonicalContext({ 'a","b': 'c' }));
  });

  it('is key-committing: a ciphertext never decrypts under another key', () => {
    const ciphertext = encryptMessage(key, header, Buffer.from('committed'));
    const other = randomBytes(32);
    assert.throws(() => decryptMessage(other, parseCiphertext(ciphertext)), InvalidCiphertextError);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (candidate) => {
        assert.throws(() => decryptMessage(candidate, parseCiphertext(ciphertext)), InvalidCiphertextError);
      }),
      { numRuns: 100 },
    );
  });

  it('refuses malformed strings without echoing them', () => {
    const valid = encryptMessage(key, header, Buffer.from('x'));
    const body = valid.split(':')[3];
    const malformed = [
      '',
      'kh1',
      'kh1:payments:3',
      `kh2:payments:3:${body}`,
      `KH1:payments:3:${body}`,
      `kh1:Payments:3:${body}`,
      `kh1::3:${body}`,
      `kh1:payments:03:${body}`,
      `kh1:payments:0:${body}`,
      `kh1:payments:-1:${body}`,
      `kh1:payments:2147483648:${body}`,
      `kh1:payments:3:${body}:extra`,
      `kh1:payments:3: ${body}`,
      `kh1:payments:3:${body.slice(0, -1)}`,
      `kh1:payments:3:${body.slice(0, 20)}`,
      `kh1:payments:3:${body}=`,
      `kh1:payments:3:${'A'.repeat(100)}!`,
    ];
    for (const ciphertext of malformed) {
      assert.throws(
        () => parseCiphertext(ciphertext),
        (error: Error) => error instanceof InvalidCiphertextError && !error.message.includes(body.slice(0, 16)),
        JSON.stringify(ciphertext.slice(0, 40)),
      );
    }
  });

  it('parses any string without throwing anything but InvalidCiphertextError (property-based)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (candidate) => {
        try {
          parseCiphertext(candidate);
        } catch (error) {
          assert.ok(error instanceof InvalidCiphertextError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
