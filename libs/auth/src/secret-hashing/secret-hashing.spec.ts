import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import argon2 from 'argon2';
import {
  RECOVERY_CODE_ALPHABET,
  generateRecoveryCodes,
  generateToken,
  hashSecret,
  makeLookupToken,
  normaliseRecoveryCode,
  parseRecoveryCode,
  secretHashNeedsRehash,
  splitToken,
  verifySecret,
} from './secret-hashing';

describe('hashSecret / verifySecret', () => {
  it('stores an Argon2id PHC string with the documented parameters, never the secret, salted afresh each time', async () => {
    const secret = generateToken();
    const first = await hashSecret(secret);
    const second = await hashSecret(secret);
    const [, params, salt] = /^\$argon2id\$v=19\$([a-z0-9=,]+)\$([A-Za-z0-9+/]+)\$[A-Za-z0-9+/]+$/.exec(first) ?? [];
    assert.deepEqual(params?.split(',').sort(), ['m=19456', 'p=1', 't=2'], first);
    assert.equal(Buffer.from(salt, 'base64').length, 16, 'a 128-bit salt');
    assert.notEqual(first, second, 'a fresh salt per hash');
    for (const hash of [first, second]) {
      assert.ok(!hash.includes(secret));
      assert.ok(!hash.includes(Buffer.from(secret).toString('base64').replace(/=+$/, '')));
    }
    assert.equal(await verifySecret(first, secret), true);
    assert.equal(await verifySecret(second, secret), true);
    assert.equal(secretHashNeedsRehash(first), false);
  });

  it('says false for a wrong secret, including one differing in a single character or in case', async () => {
    const secret = generateToken();
    const hash = await hashSecret(secret);
    const lastChanged = secret.slice(0, -1) + (secret.endsWith('A') ? 'B' : 'A');
    for (const wrong of [lastChanged, secret.toUpperCase() === secret ? secret.toLowerCase() : secret.toUpperCase(), `${secret} `, secret.slice(1), generateToken()]) {
      assert.equal(await verifySecret(hash, wrong), false, wrong);
    }
  });

  it('never throws on a malformed hash or odd input: false', async () => {
    const secret = 'correct horse battery staple';
    const good = await hashSecret(secret);
    const argon2i = await argon2.hash(secret, { type: argon2.argon2i });
    const malformed: unknown[] = [
      '',
      'not a hash',
      '$argon2id$',
      '$argon2id$v=19$m=19456,t=2,p=1$',
      good.slice(0, -10),
      good.replace('m=19456', 'm=abc'),
      good.replace('$argon2id$', '$argon2x$'),
      argon2i, // a real hash, but not argon2id
      secret, // the secret itself, stored by mistake, does not verify against itself
      null,
      undefined,
      42,
      { hash: good },
    ];
    for (const hash of malformed) {
      assert.equal(await verifySecret(hash as string, secret), false, String(hash));
    }
    for (const input of ['', 'x'.repeat(1025), null, undefined, 7]) {
      assert.equal(await verifySecret(good, input as string), false, String(input));
    }
    assert.equal(secretHashNeedsRehash('junk'), true);
    assert.equal(secretHashNeedsRehash(argon2i), true);
  });

  it('refuses to hash an empty or over-long secret (a programming error)', async () => {
    await assert.rejects(hashSecret(''), TypeError);
    await assert.rejects(hashSecret('x'.repeat(1025)), TypeError);
    await assert.rejects(hashSecret(undefined as unknown as string), TypeError);
  });
});

describe('tokens', () => {
  it('generateToken: 32 random bytes, base64url without padding, never twice the same', () => {
    const tokens = new Set(Array.from({ length: 200 }, () => generateToken()));
    assert.equal(tokens.size, 200);
    for (const token of tokens) {
      assert.match(token, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(Buffer.from(token, 'base64url').length, 32);
    }
  });

  it('makeLookupToken: `<id>.<secret>` that splitToken takes apart again; the id is not the secret', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 100; i += 1) {
      const { id, secret, token } = makeLookupToken();
      assert.equal(token, `${id}.${secret}`);
      assert.equal(Buffer.from(id, 'base64url').length, 12);
      assert.equal(Buffer.from(secret, 'base64url').length, 32);
      assert.deepEqual(splitToken(token), { id, secret });
      assert.ok(!seen.has(id) && !seen.has(secret));
      seen.add(id).add(secret);
    }
  });

  it('splitToken: null for anything else, without throwing', () => {
    const { id, secret, token } = makeLookupToken();
    // A base64url string of 32 bytes ends in one of 'AEIMQUYcgkosw048': any other last letter sets unused bits.
    const nonCanonicalSecret = secret.slice(0, -1) + ('AEIMQUYcgkosw048'.includes(secret.at(-1) as string) ? 'B' : 'C');
    const junk: unknown[] = [
      '',
      '.',
      id,
      secret,
      `${id}.`,
      `.${secret}`,
      `${id}.${secret}.x`,
      `${id}..${secret}`,
      `${id} .${secret}`,
      `${token} `,
      ` ${token}`,
      `${token}\n`,
      `${id}.${secret}=`,
      `${id}.${secret.slice(1)}`,
      `${id}x.${secret}`,
      `${id.slice(1)}.${secret}`,
      `${id}.${secret.slice(0, -1)}+`,
      `${id}.${secret.slice(0, -1)}/`,
      `${id}.${nonCanonicalSecret}`,
      `${id}.${secret.slice(0, -1)}é`,
      token.replace('.', ':'),
      'a'.repeat(100_000),
      null,
      undefined,
      12,
      { id, secret },
      [token],
    ];
    for (const input of junk) assert.equal(splitToken(input), null, JSON.stringify(input)?.slice(0, 80));
  });

  it('only the secret part of a lookup token needs hashing: the id alone does not verify', async () => {
    const { id, secret, token } = makeLookupToken();
    const hash = await hashSecret(secret);
    assert.equal(await verifySecret(hash, secret), true);
    assert.equal(await verifySecret(hash, id), false);
    assert.equal(await verifySecret(hash, token), false);
  });
});

describe('recovery codes', () => {
  it('ten by default, four groups of five letters from a 32-letter alphabet (100 bits each), all different', () => {
    const codes = generateRecoveryCodes();
    assert.equal(codes.length, 10);
    assert.equal(new Set(codes).size, 10);
    assert.equal(new Set(RECOVERY_CODE_ALPHABET).size, 32);
    assert.doesNotMatch(RECOVERY_CODE_ALPHABET, /[01IO]/, 'no look-alikes');
    for (const code of codes) assert.match(code, /^[A-HJ-NP-Z2-9]{5}(-[A-HJ-NP-Z2-9]{5}){3}$/);
    assert.equal(generateRecoveryCodes(3).length, 3);
    assert.throws(() => generateRecoveryCodes(0), RangeError);
  });

  it('uses the whole alphabet, evenly (a biased generator would favour some letters)', () => {
    const counts = new Map<string, number>();
    for (const code of generateRecoveryCodes(100).concat(generateRecoveryCodes(100))) {
      for (const letter of code.replace(/-/g, '')) counts.set(letter, (counts.get(letter) ?? 0) + 1);
    }
    assert.equal(counts.size, 32);
    // 4000 letters, 125 expected per letter; a letter below 60 or above 200 is ~6 standard deviations off.
    for (const [letter, count] of counts) assert.ok(count > 60 && count < 200, `${letter}: ${count}`);
  });

  it('normalises case, spaces and dashes (ASCII or typographic) away; parseRecoveryCode refuses junk', () => {
    const [code] = generateRecoveryCodes(1);
    const plain = code.replace(/-/g, '');
    for (const typed of [code, code.toLowerCase(), plain, ` ${code.replace(/-/g, ' ')} `, code.replace(/-/g, '\u2013'), `${plain.slice(0, 10)}\t${plain.slice(10).toLowerCase()}`]) {
      assert.equal(normaliseRecoveryCode(typed), plain, typed);
      assert.equal(parseRecoveryCode(typed), plain, typed);
    }
    for (const junk of ['', code.slice(0, -1), `${code}A`, code.replace(/[A-Z]/, '0'), code.replace(/[A-Z]/, 'I'), 'x'.repeat(300), null, 5]) {
      assert.equal(parseRecoveryCode(junk), null, String(junk));
    }
  });

  it('a stored code (hash of its normal form) verifies however it is typed back, and another code does not', async () => {
    const [code, other] = generateRecoveryCodes(2);
    const hash = await hashSecret(normaliseRecoveryCode(code));
    assert.ok(!hash.includes(normaliseRecoveryCode(code)));
    assert.equal(await verifySecret(hash, normaliseRecoveryCode(code.toLowerCase().replace(/-/g, ' '))), true);
    assert.equal(await verifySecret(hash, normaliseRecoveryCode(other)), false);
    assert.equal(await verifySecret(hash, code), false, 'the dashed form is not what is stored');
  });
});
