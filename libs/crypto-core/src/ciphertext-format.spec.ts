import assert from 'node:assert/strict';
import { createDecipheriv, createSecretKey, hkdfSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type EncryptionContext,
  canonicalContext,
  ciphertextKeyName,
  decryptMessage,
  encryptMessage,
  encryptMessageWithSalt,
  importVersionKey,
  parseCiphertext,
} from './ciphertext-format';
import { InvalidCiphertextError } from './errors';

interface Vector {
  description: string;
  key: string;
  salt: string;
  keyName: string;
  keyVersion: number;
  /** Absent: data (kh1). */
  purpose?: 'wrapped-key';
  plaintext: string;
  context: Record<string, string> | null;
  canonicalContext: string;
  ciphertext: string;
}

// Compiled to dist/ciphertext-format.spec.js: the vectors sit in ../test-vectors from there.
const vectorsPath = join(__dirname, '..', 'test-vectors', 'ciphertext-v1.json');
const vectors: Vector[] = JSON.parse(readFileSync(vectorsPath, 'utf8')).vectors;

/**
 * docs/ciphertext-format.md, decrypted with nothing but node:crypto and the vector's own bytes: independent
 * of the code under test, so a change to the layout cannot pass by changing both sides at once.
 */
function decryptByTheDocument(key: Buffer, ciphertext: string, canonicalContextBytes: Buffer): Buffer {
  const lastColon = ciphertext.lastIndexOf(':');
  const header = Buffer.from(ciphertext.slice(0, lastColon + 1), 'utf8');
  const body = Buffer.from(ciphertext.slice(lastColon + 1), 'base64');
  const info = Buffer.concat([Buffer.from('keyhold/ciphertext/v1', 'utf8'), Buffer.from([0]), header]);
  const okm = Buffer.from(hkdfSync('sha256', key, body.subarray(0, 32), info, 76));
  assert.deepEqual(body.subarray(32, 64), okm.subarray(44, 76), 'commitment');
  const decipher = createDecipheriv('aes-256-gcm', okm.subarray(0, 32), okm.subarray(32, 44));
  decipher.setAAD(Buffer.concat([header, canonicalContextBytes]));
  decipher.setAuthTag(body.subarray(body.length - 16));
  return Buffer.concat([decipher.update(body.subarray(64, body.length - 16)), decipher.final()]);
}

function assertRefused(key: Uint8Array, ciphertext: string, context?: EncryptionContext, note?: string): void {
  assert.throws(() => decryptMessage(key, parseCiphertext(ciphertext), context), InvalidCiphertextError, note);
}

const key = randomBytes(32);
const header = { keyName: 'payments', keyVersion: 3 };
// Deterministic: vector 3's body contains '+', '/' and '==' padding, which the malformed cases need.
const vectorCiphertext = vectors[2].ciphertext;
const vectorBody = vectorCiphertext.slice(vectorCiphertext.lastIndexOf(':') + 1);

describe('ciphertext format kh1', () => {
  describe('known answers (test-vectors/ciphertext-v1.json)', () => {
    for (const vector of vectors) {
      it(vector.description, () => {
        const vectorKey = Buffer.from(vector.key, 'hex');
        const context = vector.context ?? undefined;
        const made = encryptMessageWithSalt(
          vectorKey,
          { keyName: vector.keyName, keyVersion: vector.keyVersion, purpose: vector.purpose },
          Buffer.from(vector.plaintext, 'hex'),
          context,
          Buffer.from(vector.salt, 'hex'),
        );
        assert.equal(made, vector.ciphertext);
        assert.equal(canonicalContext(context).toString('hex'), vector.canonicalContext);
        const decrypted = decryptMessage(vectorKey, parseCiphertext(vector.ciphertext), context);
        assert.equal(decrypted.toString('hex'), vector.plaintext);
        const contextBytes = Buffer.from(vector.canonicalContext, 'hex');
        const independent = decryptByTheDocument(vectorKey, vector.ciphertext, contextBytes);
        assert.equal(independent.toString('hex'), vector.plaintext);
      });
    }

    it('gives the same bytes with the version key imported as a key object', () => {
      for (const vector of vectors) {
        const keyObject = importVersionKey(Buffer.from(vector.key, 'hex'));
        const { keyName, keyVersion, purpose } = vector;
        const context = vector.context ?? undefined;
        const plaintext = Buffer.from(vector.plaintext, 'hex');
        const salt = Buffer.from(vector.salt, 'hex');
        const made = encryptMessageWithSalt(keyObject, { keyName, keyVersion, purpose }, plaintext, context, salt);
        assert.equal(made, vector.ciphertext);
        assert.deepEqual(decryptMessage(keyObject, parseCiphertext(made), context), plaintext);
      }
    });
  });

  it('round-trips the empty plaintext and 32 KiB', () => {
    for (const plaintext of [Buffer.alloc(0), randomBytes(32 * 1024)]) {
      for (const context of [undefined, { a: 'b' }]) {
        const ciphertext = encryptMessage(key, header, plaintext, context);
        assert.deepEqual(decryptMessage(key, parseCiphertext(ciphertext), context), plaintext);
      }
    }
  });

  it('round-trips any plaintext and context (property-based)', () => {
    const contexts = fc.dictionary(fc.string(), fc.string(), { maxKeys: 5 });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), contexts, (data, context) => {
        const ciphertext = encryptMessage(key, header, data, context);
        assert.deepEqual(decryptMessage(key, parseCiphertext(ciphertext), context), Buffer.from(data));
      }),
      { numRuns: 200 },
    );
  });

  it('never repeats: two encryptions of the same plaintext differ', () => {
    assert.notEqual(encryptMessage(key, header, Buffer.from('same')), encryptMessage(key, header, Buffer.from('same')));
  });

  it('fails on every single-bit flip of the body, and every truncation of the body', () => {
    const parsed = parseCiphertext(encryptMessage(key, header, Buffer.from('flip me'), { a: 'b' }));
    for (let i = 0; i < parsed.body.length; i += 1) {
      for (let bit = 0; bit < 8; bit += 1) {
        const body = Buffer.from(parsed.body);
        body[i] ^= 1 << bit;
        const note = `byte ${i} bit ${bit}`;
        assert.throws(() => decryptMessage(key, { ...parsed, body }, { a: 'b' }), InvalidCiphertextError, note);
      }
    }
    for (let length = 0; length < parsed.body.length; length += 1) {
      const body = parsed.body.subarray(0, length);
      const note = `length ${length}`;
      assert.throws(() => decryptMessage(key, { ...parsed, body }, { a: 'b' }), InvalidCiphertextError, note);
    }
  });

  it('fails on every single-bit flip of the header, and every truncation or extension of the string', () => {
    const ciphertext = encryptMessage(key, header, Buffer.from('flip me'));
    const headerLength = ciphertext.lastIndexOf(':') + 1;
    for (let i = 0; i < headerLength; i += 1) {
      for (let bit = 0; bit < 8; bit += 1) {
        const flipped = String.fromCharCode(ciphertext.charCodeAt(i) ^ (1 << bit));
        const altered = ciphertext.slice(0, i) + flipped + ciphertext.slice(i + 1);
        assertRefused(key, altered, undefined, `char ${i} bit ${bit}`);
      }
    }
    for (let length = 0; length < ciphertext.length; length += 1) {
      assertRefused(key, ciphertext.slice(0, length), undefined, `length ${length}`);
    }
    assertRefused(key, `${ciphertext}AAAA`);
    assertRefused(key, ciphertext.slice(0, -4) + Buffer.alloc(3).toString('base64') + ciphertext.slice(-4));
  });

  it('binds the header: the same body under another key name or version fails', () => {
    const body = encryptMessage(key, header, Buffer.from('x')).split(':')[3];
    for (const relabelled of [`kh1:payment:3:${body}`, `kh1:payments:4:${body}`, `kh1:payments.old:3:${body}`]) {
      assertRefused(key, relabelled);
    }
  });

  it('binds the purpose: a wrapped key (khw1) relabelled as data (kh1), or data relabelled as a wrapped key, fails', () => {
    const wrapped = encryptMessage(key, { ...header, purpose: 'wrapped-key' }, Buffer.from('a key'), { a: 'b' });
    const data = encryptMessage(key, header, Buffer.from('a key'), { a: 'b' });
    assert.ok(wrapped.startsWith('khw1:payments:3:') && data.startsWith('kh1:payments:3:'));
    assert.equal(parseCiphertext(wrapped).purpose, 'wrapped-key');
    assert.equal(parseCiphertext(data).purpose, 'data');
    assert.equal(decryptMessage(key, parseCiphertext(wrapped), { a: 'b' }).toString(), 'a key');
    assertRefused(key, wrapped.replace(/^khw1:/, 'kh1:'), { a: 'b' });
    assertRefused(key, data.replace(/^kh1:/, 'khw1:'), { a: 'b' });
    // The header (prefix included) is what the key derivation and the associated data take.
    assert.equal(parseCiphertext(wrapped).header.toString('utf8'), 'khw1:payments:3:');
    assert.throws(() => encryptMessage(key, { ...header, purpose: 'other' as 'data' }, Buffer.from('x')), RangeError);
  });

  it('binds the context: missing, extra or changed entries fail; order does not matter', () => {
    const ciphertext = encryptMessage(key, header, Buffer.from('x'), { tenant: 'acme', purpose: 'pay' });
    assert.equal(decryptMessage(key, parseCiphertext(ciphertext), { purpose: 'pay', tenant: 'acme' }).toString(), 'x');
    const others: Array<EncryptionContext | undefined> = [
      undefined,
      {},
      { tenant: 'acme' },
      { tenant: 'acme', purpose: 'pay', x: '' },
      { tenant: 'acme', purpose: 'PAY' },
      { tenant: 'acme', Purpose: 'pay' },
      { tenant: 'acme', purpose: 'pay ' },
    ];
    for (const context of others) assertRefused(key, ciphertext, context, JSON.stringify(context));
    assertRefused(key, encryptMessage(key, header, Buffer.from('x')), { a: '' });
  });

  it('canonicalises the context: [key, value] JSON pairs sorted by UTF-16 code unit, whatever the input order', () => {
    assert.equal(canonicalContext({ b: '2', a: '1' }).toString('utf8'), '[["a","1"],["b","2"]]');
    assert.deepEqual(canonicalContext({ b: '2', a: '1' }), canonicalContext({ a: '1', b: '2' }));
    assert.equal(canonicalContext().length, 0);
    assert.equal(canonicalContext({}).length, 0);
    // U+1F600 is stored as the surrogates D83D DE00, so it sorts before U+FF5E by code unit (not by code point).
    const astralFirst = '[["\u{1f600}","y"],["\uff5e","x"]]';
    assert.equal(canonicalContext({ '\uff5e': 'x', '\u{1f600}': 'y' }).toString('utf8'), astralFirst);
    assert.notDeepEqual(canonicalContext({ a: 'b,c' }), canonicalContext({ 'a","b': 'c' }));
    assert.notDeepEqual(canonicalContext({ a: '' }), canonicalContext({}));
  });

  it('refuses context values that are not strings', () => {
    for (const value of [undefined, null, 1]) {
      const context = { a: value } as unknown as EncryptionContext;
      assert.throws(() => canonicalContext(context), TypeError);
      assert.throws(() => encryptMessage(key, header, Buffer.from('x'), context), TypeError);
    }
  });

  it('is key-committing: a ciphertext made under key A never decrypts under another key', () => {
    const ciphertext = encryptMessage(key, header, Buffer.from('committed'));
    assertRefused(randomBytes(32), ciphertext);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (candidate) => {
        fc.pre(!Buffer.from(candidate).equals(key));
        assertRefused(candidate, ciphertext);
      }),
      { numRuns: 100 },
    );
  });

  it('checks the commitment: with the same salt, key B refuses a body whose GCM part B alone would accept', () => {
    const keyA = randomBytes(32);
    const keyB = randomBytes(32);
    const salt = randomBytes(32);
    const plaintext = Buffer.from('same salt, other key');
    const bodyA = parseCiphertext(encryptMessageWithSalt(keyA, header, plaintext, undefined, salt)).body;
    const parsedB = parseCiphertext(encryptMessageWithSalt(keyB, header, plaintext, undefined, salt));
    assert.notDeepEqual(bodyA.subarray(32, 64), parsedB.body.subarray(32, 64), 'commitments differ per key');
    // A's salt and commitment in front of B's own GCM ciphertext and tag: GCM under B verifies it, so only
    // the commitment check can refuse it.
    const spliced = { ...parsedB, body: Buffer.concat([bodyA.subarray(0, 64), parsedB.body.subarray(64)]) };
    const forgedText = `kh1:payments:3:${spliced.body.toString('base64')}`;
    assert.throws(() => decryptByTheDocument(keyB, forgedText, Buffer.alloc(0)), /commitment/);
    const info = Buffer.concat([Buffer.from('keyhold/ciphertext/v1\0'), parsedB.header]);
    const okm = Buffer.from(hkdfSync('sha256', keyB, salt, info, 76));
    const gcm = createDecipheriv('aes-256-gcm', okm.subarray(0, 32), okm.subarray(32, 44));
    gcm.setAAD(parsedB.header);
    gcm.setAuthTag(spliced.body.subarray(spliced.body.length - 16));
    assert.deepEqual(Buffer.concat([gcm.update(spliced.body.subarray(64, -16)), gcm.final()]), plaintext);
    assert.throws(() => decryptMessage(keyB, spliced), InvalidCiphertextError);
    assert.throws(() => decryptMessage(keyA, spliced), InvalidCiphertextError);
    assert.throws(() => decryptMessage(keyB, { ...parsedB, body: bodyA }), InvalidCiphertextError);
  });

  it('says nothing about which check failed', () => {
    const ciphertext = encryptMessage(key, header, Buffer.from('x'), { a: 'b' });
    const parsed = parseCiphertext(ciphertext);
    const flipped = { ...parsed, body: Buffer.from(parsed.body) };
    flipped.body[70] ^= 1;
    const messages = new Set<string>();
    for (const attempt of [
      () => decryptMessage(randomBytes(32), parsed, { a: 'b' }),
      () => decryptMessage(key, parsed, { a: 'c' }),
      () => decryptMessage(key, flipped, { a: 'b' }),
      () => decryptMessage(key, { ...parsed, body: parsed.body.subarray(0, 40) }, { a: 'b' }),
    ]) {
      assert.throws(attempt, (error: Error) => (messages.add(error.message), error instanceof InvalidCiphertextError));
    }
    assert.equal(messages.size, 1);
  });

  it('refuses malformed strings, with a message that does not repeat them', () => {
    const body = vectorBody;
    const name = 'k8s-secrets';
    const malformed: Array<[string, string]> = [
      ['empty', ''],
      ['prefix only', 'kh1'],
      ['no body', `kh1:${name}:3`],
      ['empty body', `kh1:${name}:3:`],
      ['other format', `kh2:${name}:3:${body}`],
      ['other kind', `khx1:${name}:3:${body}`],
      ['upper-case wrapped-key prefix', `KHW1:${name}:3:${body}`],
      ['upper-case prefix', `KH1:${name}:3:${body}`],
      ['leading space', ` kh1:${name}:3:${body}`],
      ['trailing newline', `kh1:${name}:3:${body}\n`],
      ['space inside the body', `kh1:${name}:3:${body.slice(0, 8)} ${body.slice(8)}`],
      ['upper-case key name', `kh1:K8s-secrets:3:${body}`],
      ['empty key name', `kh1::3:${body}`],
      ['key name starting with a dot', `kh1:.k8s:3:${body}`],
      ['key name of 65 characters', `kh1:${'a'.repeat(65)}:3:${body}`],
      ['non-ASCII key name', `kh1:k8s-secr\u0435ts:3:${body}`],
      ['leading zero', `kh1:${name}:03:${body}`],
      ['version 0', `kh1:${name}:0:${body}`],
      ['negative version', `kh1:${name}:-1:${body}`],
      ['signed version', `kh1:${name}:+3:${body}`],
      ['exponent version', `kh1:${name}:1e3:${body}`],
      ['full-width digit', `kh1:${name}:\uff13:${body}`],
      ['version above 2^31-1', `kh1:${name}:2147483648:${body}`],
      ['eleven-digit version', `kh1:${name}:99999999999:${body}`],
      ['extra colon', `kh1:${name}:3:${body}:extra`],
      ['missing padding', `kh1:${name}:3:${body.replace(/=+$/, '')}`],
      ['base64url alphabet', `kh1:${name}:3:${body.replace(/\+/g, '-').replace(/\//g, '_')}`],
      ['non-zero slack bits', `kh1:${name}:3:${body.slice(0, -3)}h==`],
      ['padding inside', `kh1:${name}:3:${body.slice(0, 8)}=${body.slice(9)}`],
      ['one byte short of the minimum', `kh1:${name}:3:${Buffer.alloc(79).toString('base64')}`],
      ['junk', `kh1:${name}:3:${'A'.repeat(100)}!`],
    ];
    assert.ok(body.includes('+') && body.includes('/') && body.endsWith('Cg=='), 'the sample exercises every case');
    for (const [label, ciphertext] of malformed) {
      assert.throws(
        () => parseCiphertext(ciphertext),
        (error: Error) =>
          error instanceof InvalidCiphertextError &&
          error.message.length <= 100 &&
          !error.message.includes(body.slice(0, 8)) &&
          !error.message.includes(name),
        label,
      );
    }
    for (const notAString of [undefined, null, 42, {}, Buffer.from(vectorCiphertext)]) {
      assert.throws(() => parseCiphertext(notAString as unknown as string), InvalidCiphertextError);
    }
  });

  it('parses the canonical form into its fields, the header being the authenticated bytes', () => {
    const parsed = parseCiphertext(vectorCiphertext);
    assert.equal(parsed.formatVersion, 1);
    assert.equal(parsed.keyName, 'k8s-secrets');
    assert.equal(parsed.keyVersion, 2147483647);
    assert.equal(parsed.header.toString('utf8'), 'kh1:k8s-secrets:2147483647:');
    assert.equal(parsed.body.toString('base64'), vectorBody);
    const shortest = parseCiphertext(`kh1:a.b_c-9:1:${Buffer.alloc(80).toString('base64')}`);
    assert.equal(shortest.body.length, 80);
    assert.throws(() => decryptMessage(key, shortest), InvalidCiphertextError);
  });

  it('parses any string without throwing anything but InvalidCiphertextError (property-based)', () => {
    const nearMisses = fc
      .tuple(fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }), fc.base64String({ maxLength: 200 }))
      .map(([name, version, body]) => `kh1:${name}:${version}:${body}`);
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), nearMisses), (candidate) => {
        try {
          parseCiphertext(candidate);
        } catch (error) {
          assert.ok(error instanceof InvalidCiphertextError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses version keys that are not 32 bytes, salts that are not 32 bytes and headers outside the format', () => {
    const parsed = parseCiphertext(encryptMessage(key, header, Buffer.from('x')));
    for (const badKey of [Buffer.alloc(0), randomBytes(16), randomBytes(33), createSecretKey(randomBytes(16))]) {
      assert.throws(() => encryptMessage(badKey, header, Buffer.from('x')), RangeError);
      assert.throws(() => decryptMessage(badKey, parsed), RangeError);
    }
    assert.throws(() => importVersionKey(randomBytes(31)), RangeError);
    assert.throws(() => encryptMessageWithSalt(key, header, Buffer.from('x'), undefined, randomBytes(16)), RangeError);
    for (const badHeader of [
      { keyName: 'Payments', keyVersion: 1 },
      { keyName: 'a:b', keyVersion: 1 },
      { keyName: 'payments', keyVersion: 0 },
      { keyName: 'payments', keyVersion: 1.5 },
      { keyName: 'payments', keyVersion: 2147483648 },
    ]) {
      assert.throws(() => encryptMessage(key, badHeader, Buffer.from('x')), RangeError, JSON.stringify(badHeader));
    }
  });
});

describe('ciphertextKeyName', () => {
  it('reads the key a header names, and nothing else', () => {
    const ciphertext = encryptMessage(randomBytes(32), { keyName: 'orders.v2', keyVersion: 3 }, Buffer.from('hi'));
    assert.equal(ciphertextKeyName(ciphertext), 'orders.v2');
    assert.equal(ciphertextKeyName('kh1:orders:1:not checked'), 'orders');
    assert.equal(ciphertextKeyName(`kh1:${'a'.repeat(64)}:1:x`), 'a'.repeat(64));
    assert.equal(ciphertextKeyName('khw1:wrapping-key:2:not checked'), 'wrapping-key');
    const others = [`kh1:${'a'.repeat(65)}:1:x`, 'kh1:Orders:1:x', 'kh1::1:x', 'kh1:orders', 'kh2:orders:1:x', 'khw2:orders:1:x', ':orders:1:x', 'orders', '', 42, null, undefined, {}];
    for (const other of others) {
      assert.equal(ciphertextKeyName(other), null, String(other));
    }
  });
});
