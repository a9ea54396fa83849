import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CHALLENGE_TTL_MS, InMemoryChallengeStore, challengeForOperation, challengeOfResponse } from './challenge-store';

function clock(start = Date.parse('2030-01-01T00:00:00Z')) {
  let now = start;
  return { now: () => new Date(now), advance: (ms: number) => (now += ms) };
}

describe('InMemoryChallengeStore', () => {
  it('issues 32 random bytes (base64url) with a public id, and gives its data back once, by id or by challenge', async () => {
    const store = new InMemoryChallengeStore();
    const first = await store.issue('sign-in', { who: 'anyone' });
    const second = await store.issue('sign-in');
    assert.match(first.challenge, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(first.challenge, 'base64url').length, 32);
    assert.match(first.id, /^[A-Za-z0-9_-]{16}$/);
    assert.notEqual(first.challenge, second.challenge);
    assert.notEqual(first.id, second.id);

    assert.deepEqual(await store.consume(first.challenge, 'sign-in'), { id: first.id, challenge: first.challenge, purpose: 'sign-in', data: { who: 'anyone' } });
    assert.equal(await store.consume(first.challenge, 'sign-in'), null, 'a replay finds nothing');
    assert.equal(await store.consume(first.id, 'sign-in'), null, 'nor by its id');

    assert.deepEqual((await store.consume(second.id, 'sign-in'))?.challenge, second.challenge);
    assert.equal(await store.consume(second.challenge, 'sign-in'), null);
    assert.equal(store.size, 0);
  });

  it('refuses a challenge for another purpose, without spending it', async () => {
    const store = new InMemoryChallengeStore();
    const issued = await store.issue('enrolment', { tokenId: 't1' });
    assert.equal(await store.consume(issued.challenge, 'sign-in'), null);
    assert.equal(await store.consume(issued.challenge, 'approval'), null);
    assert.deepEqual((await store.consume(issued.challenge, 'enrolment'))?.data, { tokenId: 't1' });
  });

  it('expires after five minutes: usable at 4:59.999, gone at 5:00', async () => {
    const time = clock();
    const store = new InMemoryChallengeStore({ now: time.now });
    const early = await store.issue('sign-in');
    const late = await store.issue('sign-in');
    assert.equal(early.expiresAt.getTime() - time.now().getTime(), CHALLENGE_TTL_MS);
    time.advance(CHALLENGE_TTL_MS - 1);
    assert.ok(await store.consume(early.challenge, 'sign-in'));
    time.advance(1);
    assert.equal(await store.consume(late.challenge, 'sign-in'), null);
    assert.equal(store.size, 0, 'the expired one is forgotten');
  });

  it('keeps a copy of the data as JSON: later changes by the caller do not leak in', async () => {
    const store = new InMemoryChallengeStore();
    const data = { adminId: 'a1', nested: { n: 1 } };
    const issued = await store.issue('add-passkey', data);
    data.nested.n = 2;
    assert.deepEqual((await store.consume(issued.id, 'add-passkey'))?.data, { adminId: 'a1', nested: { n: 1 } });
  });

  it('takes a caller-chosen challenge (an operation hash) but never two live records for one challenge', async () => {
    const store = new InMemoryChallengeStore();
    const challenge = challengeForOperation('{"kind":"destroy"}');
    const issued = await store.issue('approval', {}, { challenge });
    assert.equal(issued.challenge, challenge);
    await assert.rejects(store.issue('approval', {}, { challenge }), /already issued/);
    await assert.rejects(store.issue('approval', {}, { challenge: 'not base64url!' }), TypeError);
    await assert.rejects(store.issue('approval', {}, { challenge: 'short' }), TypeError);
    await assert.rejects(store.issue(''), TypeError);
    assert.ok(await store.consume(challenge, 'approval'));
    assert.ok(await store.issue('approval', {}, { challenge }), 'once spent, it may be issued again');
  });

  it('is bounded: beyond maxEntries the oldest challenges are dropped', async () => {
    const store = new InMemoryChallengeStore({ maxEntries: 3 });
    const issued = [];
    for (let i = 0; i < 5; i += 1) issued.push(await store.issue('sign-in'));
    assert.equal(store.size, 3);
    assert.equal(await store.consume(issued[0].challenge, 'sign-in'), null);
    assert.equal(await store.consume(issued[1].challenge, 'sign-in'), null);
    for (const kept of issued.slice(2)) assert.ok(await store.consume(kept.challenge, 'sign-in'));
  });

  it('finds nothing for junk', async () => {
    const store = new InMemoryChallengeStore();
    await store.issue('sign-in');
    for (const junk of ['', 'x', '__proto__', 'constructor', null, undefined, 5]) {
      assert.equal(await store.consume(junk as string, 'sign-in'), null);
    }
  });
});

describe('challengeForOperation', () => {
  it('is base64url(SHA-256("keyhold approval v1\\0" + canonical JSON)): vectors computed with Python hashlib', () => {
    const canonical = '{"expiresAt":"2030-01-01T00:00:00.000Z","kind":"destroy-key-now","keyName":"payments","nonce":"n1","requester":"alice"}';
    assert.equal(challengeForOperation(canonical), 'GwEFWfvMQuEre8fRt49Mtq4M4d-WiXuJvGB7_l_R6d0');
    assert.equal(challengeForOperation('{"k":"é"}'), 'XWgixh_Ev0X8DJZNVaMUh-SSARUVDafXlch0SKt4ibk', 'UTF-8, not Latin-1');
  });

  it('changes with every byte of the operation', () => {
    const canonical = '{"keyName":"payments","kind":"destroy-key-now"}';
    const base = challengeForOperation(canonical);
    for (const other of ['{"keyName":"payment","kind":"destroy-key-now"}', '{"keyName":"payments","kind":"destroy-key-now"} ', '{"kind":"destroy-key-now","keyName":"payments"}']) {
      assert.notEqual(challengeForOperation(other), base);
    }
    assert.throws(() => challengeForOperation(''), TypeError);
  });
});

describe('challengeOfResponse', () => {
  const encode = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

  it('reads the challenge a response names, unverified', () => {
    const response = { response: { clientDataJSON: encode({ type: 'webauthn.get', challenge: 'abc_DEF-123', origin: 'https://x' }) } };
    assert.equal(challengeOfResponse(response), 'abc_DEF-123');
  });

  it('is null, never an exception, for anything malformed', () => {
    const junk: unknown[] = [
      null,
      undefined,
      'string',
      {},
      { response: null },
      { response: { clientDataJSON: 5 } },
      { response: { clientDataJSON: encode('not json') } },
      { response: { clientDataJSON: encode('null') } },
      { response: { clientDataJSON: encode({ challenge: 5 }) } },
      { response: { clientDataJSON: encode({ challenge: 'has spaces' }) } },
      { response: { clientDataJSON: encode({ challenge: 'a'.repeat(600) }) } },
      { response: { clientDataJSON: 'A'.repeat(10_000) } },
    ];
    for (const response of junk) assert.equal(challengeOfResponse(response), null, JSON.stringify(response)?.slice(0, 60));
  });
});
