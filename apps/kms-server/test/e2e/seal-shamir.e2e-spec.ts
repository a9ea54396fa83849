import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ShamirSealFile } from '@keyhold/contracts';
import { combineShares, decodeShare, randomBytes, splitSecret } from '@keyhold/crypto-core';
import { dumpDatabase } from '../support/database-dump';
import { SealState } from '../../src/seal/seal-state';
import { initShamirMasterKey, readShamirSealFile } from '../../src/seal/shamir-seal';
import { kmsctl } from '../support/kmsctl';
import { SoftwareAuthenticator } from '../support/software-authenticator';
import { enrolAdmin, setupTokenOf } from '../support/test-admins';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

const INIT_CLI = resolve(__dirname, '../../src/cli/keyhold-init.js');

describe('keyhold-init no longer issues Shamir shares', () => {
  it('points the old invocation at kmsctl init, writing nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyhold-init-shamir-'));
    try {
      for (const args of [['--shares', '5', '--threshold', '3'], ['--seal', 'shamir']]) {
        const result = spawnSync(process.execPath, [INIT_CLI, ...args, '--out', dir], { encoding: 'utf8' });
        assert.equal(result.status, 1, args.join(' '));
        assert.match(result.stderr, /^keyhold-init: Shamir shares are created by kmsctl init --shares N --threshold T --out <dir>/);
        assert.equal(result.stdout, '');
      }
      assert.ok(!existsSync(join(dir, 'master-key.shamir.json')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('KEYHOLD_SEAL=shamir: a sealed start, unsealed by 3 of 5 shares', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-seal-'));
  let file: ShamirSealFile;
  let shares: string[];
  let initOutput: string;
  let kh: TestKeyhold;
  const logs: string[] = [];

  const start = (databaseUrl?: string) =>
    startTestKeyhold({ admin: true, databaseUrl, seal: { state: new SealState('shamir', null), shamir: file } });
  const submit = (share: unknown) => kh.adminHttp().post('/api/v1/seal/shares').send({ share });
  const status = async () => (await kh.adminHttp().get('/api/v1/seal').expect(200)).body;

  before(async () => {
    const init = await kmsctl(['init', '--shares', '5', '--threshold', '3', '--out', dir]);
    assert.equal(init.code, 0, init.stderr);
    initOutput = init.stdout;
    shares = [...init.stdout.matchAll(/^share \d of 5: (khs1-\S+)$/gm)].map((match) => match[1]);
    assert.equal(shares.length, 5, init.stdout);
    file = readShamirSealFile(join(dir, 'master-key.shamir.json'));
    kh = await start();
  });
  after(async () => {
    logs.push(...kh.logs);
    await kh.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('kmsctl init writes a verifier (mode 600) that holds no share and no key, and never prints the key', async () => {
    const path = join(dir, 'master-key.shamir.json');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const text = readFileSync(path, 'utf8');
    assert.deepEqual(Object.keys(JSON.parse(text)).sort(), ['checkValue', 'createdAt', 'format', 'setId', 'shares', 'threshold', 'version']);
    for (const share of shares) assert.ok(!text.includes(share.slice(5)));
    const masterKey = await combineShares(shares.slice(0, 3).map((share) => decodeShare(share)));
    for (const form of [masterKey.toString('hex'), masterKey.toString('base64'), masterKey.toString('base64url')]) {
      assert.ok(!text.includes(form), 'the master key is in the seal file');
      assert.ok(!initOutput.includes(form), 'kmsctl init printed the master key');
    }
    assert.equal(file.threshold, 3);
    assert.equal(file.shares, 5);
  });

  it('a second kmsctl init into the same directory exits 1 and leaves the seal file as it was', async () => {
    const path = join(dir, 'master-key.shamir.json');
    const before = readFileSync(path, 'utf8');
    const again = await kmsctl(['init', '--shares', '5', '--threshold', '3', '--out', dir]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^kmsctl: .*master-key\.shamir\.json already exists and was left as it is/);
    assert.equal(again.stdout, '');
    assert.equal(readFileSync(path, 'utf8'), before);
    const usage = await kmsctl(['init', '--shares', '300', '--threshold', '3', '--out', dir]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--shares must be an integer from 2 to 255/);
  });

  it('sealed: health says so, every key operation answers 503 SEALED, the scheduler does nothing', async () => {
    const health = await kh.http().get('/v1/health').expect(503);
    assert.equal(health.body.sealed, true);
    assert.equal(health.body.status, 'sealed');
    assert.equal(health.body.masterKeyProtection, 'shamir');
    for (const test of [
      kh.http().get('/v1/keys'),
      kh.http().post('/v1/keys').send({ name: 'early', algorithm: 'aes-256-gcm' }),
      kh.http().post('/v1/keys/early/encrypt').send({ plaintext: 'aGVsbG8=' }),
    ]) {
      const response = await test.expect(503);
      assert.equal(response.body.error.code, 'SEALED');
      assert.match(response.body.error.message, /sealed/);
      assert.ok(response.body.error.requestId);
    }
    assert.deepEqual(await kh.server.scheduler.runOnce(), { ran: false, rotated: [], destroyed: [] });
    assert.deepEqual(await status(), { sealed: true, protection: 'shamir', threshold: 3, shares: 5, received: 0 });
  });

  it('refuses malformed shares and shares of another master key without counting them', async () => {
    const body = shares[0].slice(5);
    const typo = `khs1-${body.slice(0, 12)}${body[12] === 'A' ? 'B' : 'A'}${body.slice(13)}`;
    const [other] = await splitSecret(randomBytes(32), 5, 3, 'deadbeef');
    for (const bad of ['hello', typo, shares[0].slice(0, 40), other]) {
      const response = await submit(bad).expect(400);
      assert.equal(response.body.error.code, 'VALIDATION_FAILED');
      if (bad.length > 30) assert.ok(!response.text.includes(bad.slice(5, 25)), 'the refusal does not echo the share');
    }
    for (const body of [{}, { share: 42 }, { share: shares[0], extra: 1 }]) {
      assert.equal((await kh.adminHttp().post('/api/v1/seal/shares').send(body)).status, 400);
    }
    assert.equal((await status()).received, 0);
  });

  it('refuses a duplicate share; forgets submitted shares across a restart', async () => {
    assert.deepEqual((await submit(shares[0]).expect(200)).body, { sealed: true, protection: 'shamir', threshold: 3, shares: 5, received: 1 });
    const duplicate = await submit(` ${shares[0]}\n`).expect(409);
    assert.equal(duplicate.body.error.code, 'INVALID_STATE');
    assert.equal((await submit(shares[1]).expect(200)).body.received, 2);

    // Restart in the middle: the two shares were in memory only.
    const databaseUrl = kh.database.url;
    logs.push(...kh.logs);
    await kh.server.close();
    await kh.dataSource.destroy();
    const drop = kh.database.drop;
    kh = await start(databaseUrl);
    kh.database.drop = drop;
    assert.deepEqual(await status(), { sealed: true, protection: 'shamir', threshold: 3, shares: 5, received: 0 });
    assert.equal((await submit(shares[2]).expect(200)).body.received, 1);
    assert.equal((await kh.http().get('/v1/keys').expect(503)).body.error.code, 'SEALED');
  });

  it('a combination that does not rebuild the key is refused and every collected share discarded', async () => {
    const forged = await splitSecret(randomBytes(32), 5, 3, file.setId);
    assert.equal((await submit(shares[3]).expect(200)).body.received, 2);
    // Share numbers (x coordinates) are random: take a forged one whose number is not held already.
    const held = new Set([shares[2], shares[3]].map((share) => decodeShare(share).index));
    const wrong = forged.find((share) => !held.has(decodeShare(share).index)) as string;
    const clash = forged.find((share) => held.has(decodeShare(share).index));
    if (clash) assert.match((await submit(clash).expect(400)).body.error.message, /same share number/);
    const refused = await submit(wrong).expect(400);
    assert.match(refused.body.error.message, /do not rebuild the master key/);
    assert.deepEqual(await status(), { sealed: true, protection: 'shamir', threshold: 3, shares: 5, received: 0 });
  });

  let ciphertext: string;
  it('3 distinct valid shares unseal it: keys work, health is ok, a Keyhold-issued identity opens the service plane', async () => {
    await submit(shares[4]).expect(200);
    await submit(shares[0]).expect(200);
    const done = await submit(shares[2]).expect(200);
    assert.deepEqual(done.body, { sealed: false, protection: 'shamir', threshold: 3, shares: 5, received: 0 });
    const health = await kh.http().get('/v1/health').expect(200);
    assert.equal(health.body.sealed, false);
    await kh.http().post('/v1/keys').send({ name: 'payments', algorithm: 'aes-256-gcm' }).expect(201);
    const encrypted = await kh.http().post('/v1/keys/payments/encrypt').send({ plaintext: 'c2VjcmV0' }).expect(200);
    ciphertext = encrypted.body.ciphertext;
    const decrypted = await kh.http().post('/v1/keys/payments/decrypt').send({ ciphertext }).expect(200);
    assert.equal(decrypted.body.plaintext, 'c2VjcmV0');
    assert.equal((await submit(shares[1]).expect(409)).body.error.code, 'INVALID_STATE');

    // The service identity CA was created at unseal and the listener trusts it from then on.
    const issued = await kh.server.identities.authority.issue({ identity: 'spiffe://test.keyhold/after-unseal', validityHours: 1, issuedBy: null });
    const credentials = { cert: issued.certificatePem, key: issued.privateKeyPem as string };
    assert.equal((await kh.http(credentials).get('/v1/health')).status, 200);
  });

  it('seals again through an approval (a fresh passkey assertion); unsealing again with other shares restores the same keys', async () => {
    const { authenticator, session } = await enrolAdmin(kh, 'alice', setupTokenOf(kh));

    assert.equal((await kh.adminHttp().post('/api/v1/seal').send({})).status, 401);
    const requested = await kh.adminHttp(session).post('/api/v1/seal').send({}).expect(201);
    assert.equal(requested.body.operation.status, 'pending');
    await kh.http().post('/v1/keys/payments/decrypt').send({ ciphertext }).expect(200);
    const response = await authenticator.getAssertion(requested.body.assertionOptions);
    const approved = await kh.adminHttp(session).post(`/api/v1/operations/${requested.body.operation.id}/approvals`).send({ response }).expect(200);
    assert.equal(approved.body.status, 'executed');

    assert.equal((await kh.http().post('/v1/keys/payments/decrypt').send({ ciphertext }).expect(503)).body.error.code, 'SEALED');
    assert.equal((await kh.http().get('/v1/health').expect(503)).body.sealed, true);
    assert.equal(kh.server.cache.size, 0);
    // While sealed, the admin plane still answers, but nothing that needs the master key runs.
    assert.equal((await kh.adminHttp(session).post('/api/v1/seal').send({})).status, 409);
    const create = await kh.adminHttp(session).post('/api/v1/keys').send({ name: 'while-sealed', algorithm: 'aes-256-gcm' });
    assert.equal(create.status, 503, create.text);
    assert.equal(create.body.error.code, 'SEALED');
    const rotate = await kh.adminHttp(session).post('/api/v1/keys/payments/rotate').send({});
    assert.equal(rotate.body.error?.code, 'SEALED', rotate.text);
    assert.equal((await kh.dataSource.query(`SELECT count(*)::int AS n FROM keyhold_keys WHERE name = 'while-sealed'`))[0].n, 0);

    for (const share of [shares[1], shares[3], shares[4]]) await submit(share).expect(200);
    const decrypted = await kh.http().post('/v1/keys/payments/decrypt').send({ ciphertext }).expect(200);
    assert.equal(decrypted.body.plaintext, 'c2VjcmV0');
  });

  it('no share and no master key reach a log line or the database', async () => {
    const all = [...logs, ...kh.logs].join('\n');
    const dump = await dumpDatabase(kh.dataSource);
    const masterKey = await combineShares(shares.slice(0, 3).map((share) => decodeShare(share)));
    for (const share of shares) {
      assert.ok(!all.includes(share.slice(5, 30)), 'a share was logged');
      assert.ok(!dump.includes(share.slice(5, 30)), 'a share is in the database');
      const bytes = decodeShare(share).bytes.toString('hex');
      assert.ok(!dump.includes(bytes), 'share bytes are in the database');
    }
    for (const form of [masterKey.toString('hex'), masterKey.toString('base64')]) {
      assert.ok(!all.includes(form), 'the master key was logged');
      assert.ok(!dump.includes(form), 'the master key is in the database');
    }
  });
});

describe('sealing reaches every instance on the database', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-seal-multi-'));
  let a: TestKeyhold;
  let b: TestKeyhold;
  let shares: string[];

  before(async () => {
    const init = await initShamirMasterKey(join(dir, 'v.json'), 3, 2);
    shares = init.shares;
    a = await startTestKeyhold({ admin: true, seal: { state: new SealState('shamir', null), shamir: init.file } });
    b = await startTestKeyhold({ databaseUrl: a.database.url, seal: { state: new SealState('shamir', null), shamir: init.file } });
  });
  after(async () => {
    await b.stop();
    await a.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('each instance is unsealed on its own; an approved seal on one seals the other through NOTIFY', async () => {
    for (const share of shares.slice(0, 2)) await a.adminHttp().post('/api/v1/seal/shares').send({ share }).expect(200);
    assert.equal((await b.http().get('/v1/keys').expect(503)).body.error.code, 'SEALED');
    for (const share of shares.slice(1, 3)) await b.server.seal.unsealer?.submit(share);
    await b.http().get('/v1/keys').expect(200);

    const { authenticator, session } = await enrolAdmin(a, 'root', setupTokenOf(a));
    const requested = await a.adminHttp(session).post('/api/v1/seal').send({}).expect(201);
    const response = await authenticator.getAssertion(requested.body.assertionOptions);
    await a.adminHttp(session).post(`/api/v1/operations/${requested.body.operation.id}/approvals`).send({ response }).expect(200);

    assert.equal(a.server.seal.state.sealed, true);
    for (let attempt = 0; attempt < 100 && !b.server.seal.state.sealed; attempt += 1) await new Promise((r) => setTimeout(r, 20));
    assert.equal((await b.http().get('/v1/keys').expect(503)).body.error.code, 'SEALED');
  });

  it('an instance that missed the notification seals when it reconnects: the seal generation is in Postgres', async () => {
    for (const share of shares.slice(0, 2)) await b.server.seal.unsealer?.submit(share);
    await b.http().get('/v1/keys').expect(200);
    // A seal B could not hear: the generation advances with no NOTIFY (B cut off from Postgres at that moment).
    await a.dataSource.query(`UPDATE keyhold_seal_generation SET generation = generation + 1, sealed_at = now() WHERE id = 1`);
    await b.http().get('/v1/keys').expect(200);
    // B's listener connection drops and comes back: it reads the generation, and seals.
    const listener = b.server.notifications.listener.backendPid();
    await a.dataSource.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1 AND application_name = 'keyhold-listener'`, [listener]);
    for (let attempt = 0; attempt < 250 && !b.server.seal.state.sealed; attempt += 1) await new Promise((r) => setTimeout(r, 20));
    assert.equal((await b.http().get('/v1/keys').expect(503)).body.error.code, 'SEALED');
    assert.notEqual(b.server.notifications.listener.backendPid(), listener, 'B is on a new listener connection');
  });
});

describe('the public share endpoint is rate-limited per source address', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-seal-limit-'));
  let kh: TestKeyhold;
  before(async () => {
    const init = await initShamirMasterKey(join(dir, 'v.json'), 3, 2);
    kh = await startTestKeyhold({
      admin: true,
      signInRateLimit: { perSecond: 0.001, burst: 3 },
      seal: { state: new SealState('shamir', null), shamir: init.file },
    });
  });
  after(async () => {
    await kh.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('guessing shares runs into 429 RATE_LIMITED with Retry-After', async () => {
    for (let i = 0; i < 3; i += 1) await kh.adminHttp().post('/api/v1/seal/shares').send({ share: 'khs1-guess' }).expect(400);
    const limited = await kh.adminHttp().post('/api/v1/seal/shares').send({ share: 'khs1-guess' }).expect(429);
    assert.equal(limited.body.error.code, 'RATE_LIMITED');
    assert.ok(Number(limited.headers['retry-after']) > 0);
  });
});

describe('kmsctl unseal: the share from stdin, never from argv', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-unseal-cli-'));
  const KMSCTL = resolve(__dirname, '../../../../kmsctl/dist/src/main.js');
  let kh: TestKeyhold;
  let shares: string[];

  // Asynchronous on purpose: the server answering the CLI runs in this process.
  const run = (args: string[], input: string) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
      const child = execFile(process.execPath, [KMSCTL, 'unseal', '--url', kh.adminOrigin, '--cacert', join(dir, 'ca.pem'), ...args], (error, stdout, stderr) =>
        done({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
      child.stdin?.end(input);
    });

  before(async () => {
    // The whole operator loop through the command line: kmsctl init --json issues, kmsctl unseal submits.
    const init = await kmsctl(['init', '--shares', '3', '--threshold', '2', '--out', dir, '--json']);
    assert.equal(init.code, 0, init.stderr);
    const issued = JSON.parse(init.stdout) as { file: string; shares: string[] };
    shares = issued.shares;
    kh = await startTestKeyhold({ admin: true, seal: { state: new SealState('shamir', null), shamir: readShamirSealFile(issued.file) } });
    writeFileSync(join(dir, 'ca.pem'), kh.ca);
  });
  after(async () => {
    await kh.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a fresh sealed Keyhold still lets its first administrator enrol (nothing there needs the master key)', async () => {
    const token = new URL(kh.server.admin?.setupLink as string).hash.replace('#token=', '');
    const authenticator = new SoftwareAuthenticator({ origin: kh.adminOrigin, rpId: 'localhost' });
    const options = await kh.adminHttp().post('/api/v1/enrolment/options').send({ token, name: 'first' }).expect(200);
    await kh.adminHttp().post('/api/v1/enrolment').send({ token, response: await authenticator.createCredential(options.body) }).expect(201);
    assert.equal(kh.server.seal.state.sealed, true);
  });

  it('submits shares and reports progress; a refusal exits 1 with the reason', async () => {
    assert.equal((await run(['--status'], '')).stdout, 'Keyhold is sealed: 0 of 2 shares received.\n');
    assert.equal((await run([], `${shares[0]}\n`)).stdout, 'Keyhold is sealed: 1 of 2 shares received.\n');
    const refused = await run([], 'khs1-not-a-share\n');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /refused \(400 VALIDATION_FAILED\): malformed share/);
    const empty = await run([], '');
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /no share on stdin/);
    assert.equal((await run([], `${shares[2]}\n`)).stdout, 'Keyhold is unsealed.\n');
    await kh.http().get('/v1/keys').expect(200);
  });
});
