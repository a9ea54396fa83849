// The WebAuthn ceremonies of @keyhold/auth driven with real bytes from the software authenticator: every
// acceptance and every refusal the admin plane relies on, without a server in between. (Here rather than
// in libs/auth: a library may not import from an app's test support.)
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { describe, it } from 'node:test';
import { decodeCBOR, type CBORType } from '@levischuck/tiny-cbor';
import {
  CHALLENGE_TTL_MS,
  InMemoryChallengeStore,
  WebAuthnCeremonies,
  WebAuthnError,
  challengeForOperation,
  challengeOfResponse,
  generateRecoveryCodes,
  generateToken,
  hashSecret,
  makeLookupToken,
  normaliseRecoveryCode,
  parseRecoveryCode,
  splitToken,
  verifySecret,
  type RegisteredPasskey,
  type WebAuthnErrorCode,
} from '@keyhold/auth';
import { SoftwareAuthenticator } from './software-authenticator';

const ORIGIN = 'https://localhost:8444';
const RP = { rpId: 'localhost', rpName: 'Keyhold', origins: [ORIGIN] };
const USER_ID = Buffer.from('admin-0001-webauthn-user-handle!'); // 32 bytes

function setup(options: { now?: () => Date } = {}) {
  return {
    ceremonies: new WebAuthnCeremonies(RP),
    store: new InMemoryChallengeStore({ now: options.now }),
    authenticator: new SoftwareAuthenticator({ origin: ORIGIN, rpId: 'localhost' }),
  };
}

/** Registration as the admin plane does it: issue a challenge, hand out options, consume, verify. */
async function register(ceremonies: WebAuthnCeremonies, store: InMemoryChallengeStore, authenticator: SoftwareAuthenticator, exclude: string[] = []) {
  const issued = await store.issue('enrolment', { tokenId: 't1' });
  const options = await ceremonies.registrationOptions({ userId: USER_ID, userName: 'alice', displayName: 'Alice', excludeCredentialIds: exclude, challenge: issued.challenge });
  const response = await authenticator.createCredential(options);
  const consumed = await store.consume(challengeOfResponse(response) as string, 'enrolment');
  assert.ok(consumed);
  return ceremonies.verifyRegistration({ response, expectedChallenge: consumed.challenge });
}

async function signInOptions(ceremonies: WebAuthnCeremonies, store: InMemoryChallengeStore) {
  const issued = await store.issue('sign-in');
  return ceremonies.authenticationOptions({ challenge: issued.challenge });
}

async function refusedWith(promise: Promise<unknown>, code: WebAuthnErrorCode) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof WebAuthnError, `a WebAuthnError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

const stored = (passkey: RegisteredPasskey, counter = passkey.counter) => ({ id: passkey.credentialId, publicKey: passkey.publicKey, counter, transports: passkey.transports });

describe('WebAuthn ceremonies with a software authenticator (real CBOR, real ES256)', () => {
  it('asks for a discoverable, user-verified passkey with no attestation, ES256 / EdDSA / RS256', async () => {
    const { ceremonies, store } = setup();
    const issued = await store.issue('enrolment');
    const options = await ceremonies.registrationOptions({ userId: USER_ID, userName: 'alice', excludeCredentialIds: ['AAAA'], challenge: issued.challenge });
    assert.equal(options.challenge, issued.challenge, 'the stored challenge, byte for byte');
    assert.deepEqual(options.rp, { id: 'localhost', name: 'Keyhold' });
    assert.equal(options.user.id, USER_ID.toString('base64url'));
    assert.equal(options.user.displayName, 'alice');
    assert.equal(options.attestation, 'none');
    assert.equal(options.authenticatorSelection?.residentKey, 'required');
    assert.equal(options.authenticatorSelection?.requireResidentKey, true);
    assert.equal(options.authenticatorSelection?.userVerification, 'required');
    assert.deepEqual(options.pubKeyCredParams.map((param) => param.alg), [-7, -8, -257]);
    assert.deepEqual(options.excludeCredentials?.map((c) => c.id), ['AAAA']);

    const auth = await ceremonies.authenticationOptions({});
    assert.deepEqual(auth.allowCredentials, [], 'discoverable: the browser offers any passkey of the RP');
    assert.equal(auth.userVerification, 'required');
    assert.equal(auth.rpId, 'localhost');
    assert.match(auth.challenge, /^[A-Za-z0-9_-]{43}$/, 'a random one when none is given');
    const bound = await ceremonies.authenticationOptions({ challenge: issued.challenge, allowCredentialIds: ['AAAA'] });
    assert.equal(bound.challenge, issued.challenge);
    assert.deepEqual(bound.allowCredentials?.map((c) => c.id), ['AAAA']);
    const userIdAsText = await ceremonies.registrationOptions({ userId: USER_ID.toString('base64url'), userName: 'alice' });
    assert.equal(userIdAsText.user.id, USER_ID.toString('base64url'), 'a base64url user id is the same handle');
  });

  it('registers a passkey and signs in with it: real bytes round trip, counter moving 0 → 1 → 2', async () => {
    const { ceremonies, store, authenticator } = setup();
    const passkey = await register(ceremonies, store, authenticator);
    assert.equal(passkey.credentialId, authenticator.credentialIds[0]);
    assert.equal(passkey.counter, 0);
    assert.deepEqual(passkey.transports, ['internal']);
    assert.equal(passkey.aaguid, '00000000-0000-0000-0000-000000000000');
    assert.equal(passkey.backedUp, false);
    assert.equal(passkey.deviceType, 'singleDevice');
    // The stored public key is a COSE EC2 P-256 key that Node can import.
    const cose = decodeCBOR(passkey.publicKey) as Map<number, CBORType>;
    assert.equal(cose.get(1), 2);
    assert.equal(cose.get(3), -7);
    const key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: Buffer.from(cose.get(-2) as Uint8Array).toString('base64url'), y: Buffer.from(cose.get(-3) as Uint8Array).toString('base64url') }, format: 'jwk' });
    assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');

    let counter = passkey.counter;
    for (const expected of [1, 2]) {
      const options = await signInOptions(ceremonies, store);
      const response = await authenticator.getAssertion(options);
      assert.equal(response.response.userHandle, USER_ID.toString('base64url'), 'discoverable: the user handle comes back');
      const consumed = await store.consume(challengeOfResponse(response) as string, 'sign-in');
      assert.ok(consumed);
      const verified = await ceremonies.verifyAuthentication({ response, expectedChallenge: consumed.challenge, credential: stored(passkey, counter), expectedUserHandle: USER_ID });
      assert.deepEqual(verified, { credentialId: passkey.credentialId, newCounter: expected, userVerified: true, backedUp: false, deviceType: 'singleDevice' });
      counter = verified.newCounter;
    }
  });

  it('refuses a response from another origin, and a cross-origin (iframe) ceremony', async () => {
    const { ceremonies, store, authenticator } = setup();
    const issued = await store.issue('enrolment');
    const options = await ceremonies.registrationOptions({ userId: USER_ID, userName: 'alice', challenge: issued.challenge });
    for (const overrides of [{ origin: 'https://evil.example' }, { origin: 'https://localhost:8443' }, { origin: 'http://localhost:8444' }, { crossOrigin: true }]) {
      await refusedWith(ceremonies.verifyRegistration({ response: await new SoftwareAuthenticator({ origin: ORIGIN, rpId: 'localhost' }).createCredential(options, overrides), expectedChallenge: issued.challenge }), 'WRONG_ORIGIN');
    }
    const passkey = await register(ceremonies, store, authenticator);
    const signIn = await signInOptions(ceremonies, store);
    for (const overrides of [{ origin: 'https://evil.example' }, { crossOrigin: true }]) {
      await refusedWith(ceremonies.verifyAuthentication({ response: await authenticator.getAssertion(signIn, overrides), expectedChallenge: signIn.challenge, credential: stored(passkey) }), 'WRONG_ORIGIN');
    }
  });

  it('refuses authenticator data made for another RP ID', async () => {
    const { ceremonies, store, authenticator } = setup();
    const issued = await store.issue('enrolment');
    const options = await ceremonies.registrationOptions({ userId: USER_ID, userName: 'alice', challenge: issued.challenge });
    await refusedWith(ceremonies.verifyRegistration({ response: await new SoftwareAuthenticator({ origin: ORIGIN, rpId: 'localhost' }).createCredential(options, { rpId: 'evil.example' }), expectedChallenge: issued.challenge }), 'WRONG_RP_ID');
    const passkey = await register(ceremonies, store, authenticator);
    const signIn = await signInOptions(ceremonies, store);
    await refusedWith(ceremonies.verifyAuthentication({ response: await authenticator.getAssertion(signIn, { rpId: 'evil.example' }), expectedChallenge: signIn.challenge, credential: stored(passkey) }), 'WRONG_RP_ID');
  });

  it('refuses an answer to another challenge; a replayed answer finds its challenge already spent', async () => {
    const { ceremonies, store, authenticator } = setup();
    const passkey = await register(ceremonies, store, authenticator);
    const options = await signInOptions(ceremonies, store);
    const other = await store.issue('sign-in');
    await refusedWith(ceremonies.verifyAuthentication({ response: await authenticator.getAssertion(options, { challenge: other.challenge }), expectedChallenge: options.challenge, credential: stored(passkey) }), 'CHALLENGE_MISMATCH');

    const response = await authenticator.getAssertion(options);
    const first = await store.consume(challengeOfResponse(response) as string, 'sign-in');
    assert.ok(first);
    const verified = await ceremonies.verifyAuthentication({ response, expectedChallenge: first.challenge, credential: stored(passkey) });
    assert.equal(await store.consume(challengeOfResponse(response) as string, 'sign-in'), null, 'the replay: no challenge to verify against');
    // Even a caller that skipped the store and verified against the next challenge would refuse it.
    const next = await signInOptions(ceremonies, store);
    await refusedWith(ceremonies.verifyAuthentication({ response, expectedChallenge: next.challenge, credential: stored(passkey, verified.newCounter) }), 'CHALLENGE_MISMATCH');
    // A registration challenge does not open a sign-in, nor the reverse.
    const enrolment = await store.issue('enrolment');
    assert.equal(await store.consume(enrolment.challenge, 'sign-in'), null);
  });

  it('an expired challenge cannot be answered (the store forgets it after five minutes)', async () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const { ceremonies, store, authenticator } = setup({ now: () => new Date(now) });
    await register(ceremonies, store, authenticator);
    const options = await signInOptions(ceremonies, store);
    now += CHALLENGE_TTL_MS;
    const response = await authenticator.getAssertion(options);
    assert.equal(await store.consume(challengeOfResponse(response) as string, 'sign-in'), null);
  });

  it('refuses a response without user verification, or without user presence', async () => {
    const { ceremonies, store, authenticator } = setup();
    const issued = await store.issue('enrolment');
    const options = await ceremonies.registrationOptions({ userId: USER_ID, userName: 'alice', challenge: issued.challenge });
    const noUv = new SoftwareAuthenticator({ origin: ORIGIN, rpId: 'localhost', userVerified: false });
    await refusedWith(ceremonies.verifyRegistration({ response: await noUv.createCredential(options), expectedChallenge: issued.challenge }), 'USER_VERIFICATION_MISSING');

    const passkey = await register(ceremonies, store, authenticator);
    for (const overrides of [{ userVerified: false }, { userPresent: false }]) {
      const signIn = await signInOptions(ceremonies, store);
      await refusedWith(ceremonies.verifyAuthentication({ response: await authenticator.getAssertion(signIn, overrides), expectedChallenge: signIn.challenge, credential: stored(passkey) }), 'USER_VERIFICATION_MISSING');
    }
  });

  it('refuses a counter that does not move forward, only once the signature verified', async () => {
    const { ceremonies, store, authenticator } = setup();
    const passkey = await register(ceremonies, store, authenticator);
    for (const [storedCounter, forced] of [[5, 3], [5, 5], [5, 0]]) {
      const options = await signInOptions(ceremonies, store);
      const response = await authenticator.getAssertion(options, { counter: forced });
      await assert.rejects(ceremonies.verifyAuthentication({ response, expectedChallenge: options.challenge, credential: stored(passkey, storedCounter) }), (error: unknown) => {
        assert.ok(error instanceof WebAuthnError && error.code === 'COUNTER_REGRESSION', String(error));
        assert.deepEqual(error.details, { storedCounter, receivedCounter: forced });
        return true;
      });
    }
    // A forged response (bad signature) with a low counter is just invalid: no false clone alarm.
    const options = await signInOptions(ceremonies, store);
    const forged = await authenticator.getAssertion(options, { counter: 1, corruptSignature: true });
    await refusedWith(ceremonies.verifyAuthentication({ response: forged, expectedChallenge: options.challenge, credential: stored(passkey, 5) }), 'INVALID_RESPONSE');
    // Moving forward passes.
    const fine = await signInOptions(ceremonies, store);
    const verified = await ceremonies.verifyAuthentication({ response: await authenticator.getAssertion(fine, { counter: 6 }), expectedChallenge: fine.challenge, credential: stored(passkey, 5) });
    assert.equal(verified.newCounter, 6);
  });

  it('accepts authenticators that never count (synced passkeys report 0 every time)', async () => {
    const { ceremonies, store } = setup();
    const synced = new SoftwareAuthenticator({ origin: ORIGIN, rpId: 'localhost', countsSignatures: false, backupEligible: true, backedUp: true });
    const passkey = await register(ceremonies, store, synced);
    assert.equal(passkey.deviceType, 'multiDevice');
    assert.equal(passkey.backedUp, true);
    for (let i = 0; i < 3; i += 1) {
      const options = await signInOptions(ceremonies, store);
      const verified = await ceremonies.verifyAuthentication({ response: await synced.getAssertion(options), expectedChallenge: options.challenge, credential: stored(passkey, 0) });
      assert.equal(verified.newCounter, 0);
    }
  });

  it('a second passkey for the same user: another authenticator registers, the same one is refused by excludeCredentials', async () => {
    const { ceremonies, store, authenticator } = setup();
    const first = await register(ceremonies, store, authenticator);
    await assert.rejects(register(ceremonies, store, authenticator, [first.credentialId]), /InvalidStateError/);
    const laptop = new SoftwareAuthenticator({ origin: ORIGIN, rpId: 'localhost', signCountStart: 40 });
    const second = await register(ceremonies, store, laptop, [first.credentialId]);
    assert.notEqual(second.credentialId, first.credentialId);
    assert.notDeepEqual(second.publicKey, first.publicKey);
    assert.equal(second.counter, 40);

    for (const [device, passkey, otherPasskey] of [[authenticator, first, second], [laptop, second, first]] as const) {
      const options = await signInOptions(ceremonies, store);
      const response = await device.getAssertion(options);
      await refusedWith(ceremonies.verifyAuthentication({ response, expectedChallenge: options.challenge, credential: stored(otherPasskey) }), 'INVALID_RESPONSE');
      // Even with the other passkey's id on it, the signature does not verify under the other key.
      const relabelled = { ...response, id: otherPasskey.credentialId, rawId: otherPasskey.credentialId };
      await refusedWith(ceremonies.verifyAuthentication({ response: relabelled, expectedChallenge: options.challenge, credential: stored(otherPasskey) }), 'INVALID_RESPONSE');
      const verified = await ceremonies.verifyAuthentication({ response, expectedChallenge: options.challenge, credential: stored(passkey), expectedUserHandle: USER_ID });
      assert.equal(verified.credentialId, passkey.credentialId);
    }
  });

  it('an approval assertion is bound to its exact operation', async () => {
    const { ceremonies, store, authenticator } = setup();
    const passkey = await register(ceremonies, store, authenticator);
    const operation = '{"expiresAt":"2030-01-01T00:05:00.000Z","keyName":"payments","kind":"destroy-key-now","nonce":"n1","requester":"alice"}';
    const options = await ceremonies.authenticationOptions({ challenge: challengeForOperation(operation) });
    const response = await authenticator.getAssertion(options);
    const verified = await ceremonies.verifyAuthentication({ response, expectedChallenge: challengeForOperation(operation), credential: stored(passkey) });
    assert.equal(verified.userVerified, true);
    const other = operation.replace('payments', 'payroll');
    await refusedWith(ceremonies.verifyAuthentication({ response, expectedChallenge: challengeForOperation(other), credential: stored(passkey, verified.newCounter) }), 'CHALLENGE_MISMATCH');
  });

  it('refuses wrong response types, tampered bytes, another user handle and garbage, always with INVALID_RESPONSE', async () => {
    const { ceremonies, store, authenticator } = setup();
    const passkey = await register(ceremonies, store, authenticator);
    const options = await signInOptions(ceremonies, store);
    const verify = (response: unknown, credential = stored(passkey)) => ceremonies.verifyAuthentication({ response, expectedChallenge: options.challenge, credential });

    await refusedWith(verify(await authenticator.getAssertion(options, { type: 'webauthn.create' })), 'INVALID_RESPONSE');
    await refusedWith(verify(await authenticator.getAssertion(options, { corruptSignature: true })), 'INVALID_RESPONSE');
    const good = await authenticator.getAssertion(options);
    const flipped = Buffer.from(good.response.authenticatorData, 'base64url');
    flipped[33] ^= 0x01; // a counter byte: signed data, so the signature no longer verifies
    await refusedWith(verify({ ...good, response: { ...good.response, authenticatorData: flipped.toString('base64url') } }), 'INVALID_RESPONSE');
    await refusedWith(
      ceremonies.verifyAuthentication({ response: await authenticator.getAssertion(options, { userHandle: Buffer.from('someone else').toString('base64url') }), expectedChallenge: options.challenge, credential: stored(passkey), expectedUserHandle: USER_ID }),
      'INVALID_RESPONSE',
    );

    const garbage: unknown[] = [
      null,
      undefined,
      'a string',
      42,
      [],
      {},
      { ...good, id: undefined },
      { ...good, rawId: 'other' },
      { ...good, type: 'password' },
      { ...good, response: null },
      { ...good, response: { ...good.response, clientDataJSON: 'not base64url!' } },
      { ...good, response: { ...good.response, clientDataJSON: Buffer.from('not json').toString('base64url') } },
      { ...good, response: { ...good.response, clientDataJSON: Buffer.from('[]').toString('base64url') } },
      { ...good, response: { ...good.response, authenticatorData: '' } },
      { ...good, response: { ...good.response, authenticatorData: 'AAAA' } },
      { ...good, response: { ...good.response, signature: 'A'.repeat(5000) } },
      { ...good, response: { ...good.response, userHandle: 17 } },
      { ...good, response: { ...good.response, clientDataJSON: 'A'.repeat(100_000) } },
    ];
    for (const response of garbage) await refusedWith(verify(response), 'INVALID_RESPONSE');

    const issued = await store.issue('enrolment');
    const regOptions = await ceremonies.registrationOptions({ userId: USER_ID, userName: 'alice', challenge: issued.challenge });
    const registration = await new SoftwareAuthenticator({ origin: ORIGIN, rpId: 'localhost' }).createCredential(regOptions);
    for (const response of [
      { ...registration, response: { ...registration.response, attestationObject: 'AAAA' } },
      { ...registration, response: { ...registration.response, attestationObject: undefined } },
      { ...registration, response: { ...registration.response, transports: 'usb' } },
      { ...registration, id: registration.id.slice(1), rawId: registration.id.slice(1) },
      null,
      'x',
    ]) {
      await refusedWith(ceremonies.verifyRegistration({ response, expectedChallenge: issued.challenge }), 'INVALID_RESPONSE');
    }
    const wrongType = await new SoftwareAuthenticator({ origin: ORIGIN, rpId: 'localhost' }).createCredential(regOptions, { type: 'webauthn.get' });
    await refusedWith(ceremonies.verifyRegistration({ response: wrongType, expectedChallenge: issued.challenge }), 'INVALID_RESPONSE');
    assert.ok(await ceremonies.verifyRegistration({ response: registration, expectedChallenge: issued.challenge }), 'the untampered one verifies');
  });

  it('refuses an unsafe or inconsistent relying-party configuration at construction', () => {
    for (const config of [
      { ...RP, rpId: '' },
      { ...RP, rpId: 'https://localhost' },
      { ...RP, rpId: 'localhost:8444' },
      { ...RP, rpId: '127.0.0.1' },
      { ...RP, rpId: 'LocalHost' },
      { ...RP, rpName: ' ' },
      { ...RP, origins: [] },
      { ...RP, origins: ['https://localhost:8444/console'] },
      { ...RP, origins: ['http://kms.example.com'] },
      { ...RP, origins: ['https://example.com'] },
      { ...RP, origins: ['https://notlocalhost'] },
      { ...RP, origins: ['not a url'] },
    ]) {
      assert.throws(() => new WebAuthnCeremonies(config), Error, JSON.stringify(config));
    }
    assert.ok(new WebAuthnCeremonies({ rpId: 'example.com', rpName: 'Keyhold', origins: ['https://kms.example.com', 'https://example.com:8444'] }));
    assert.ok(new WebAuthnCeremonies({ rpId: 'localhost', rpName: 'Keyhold', origins: ['http://localhost:8444'] }), 'plain http for localhost only (tests)');
  });
});

describe('tokens and recovery codes, as the admin plane uses them', () => {
  it('a lookup token: the hash never contains the secret, verifies only the secret, and junk does not split', async () => {
    const { id, secret, token } = makeLookupToken();
    const hash = await hashSecret(secret);
    assert.notEqual(hash, secret);
    assert.ok(!hash.includes(secret) && !hash.includes(token));
    const parts = splitToken(token);
    assert.deepEqual(parts, { id, secret });
    assert.equal(await verifySecret(hash, parts?.secret as string), true);
    assert.equal(await verifySecret(hash, makeLookupToken().secret), false);
    assert.equal(await verifySecret('$argon2id$v=19$garbage', secret), false);
    assert.equal(await verifySecret('', secret), false);
    for (const junk of ['', 'junk', `${token}x`, token.replace('.', ''), `${id}.${id}`, generateToken()]) assert.equal(splitToken(junk), null, junk);
  });

  it('recovery codes: stored as hashes of their normal form; each verifies however it is typed, and only itself', async () => {
    const codes = generateRecoveryCodes();
    const hashes = await Promise.all(codes.map((code) => hashSecret(normaliseRecoveryCode(code))));
    for (const [i, hash] of hashes.entries()) assert.ok(!hash.includes(normaliseRecoveryCode(codes[i])));
    const typed = ` ${codes[3].toLowerCase().replace(/-/g, ' ')} `;
    const normal = parseRecoveryCode(typed);
    assert.ok(normal);
    const matches = await Promise.all(hashes.map((hash) => verifySecret(hash, normal)));
    assert.deepEqual(matches.map((match, i) => (match ? i : -1)).filter((i) => i >= 0), [3]);
    assert.equal(parseRecoveryCode('not-a-code'), null);
  });
});
