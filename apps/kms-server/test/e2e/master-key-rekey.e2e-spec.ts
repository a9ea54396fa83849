import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dumpDatabase } from '../support/database-dump';
import { openDatabase } from '../../src/database/data-source';
import { startKeyholdServer } from '../../src/keyhold-server';
import { KeyholdLogger, createLogger } from '../../src/logging/logger';
import { loadSealedMasterKey, writeSealedMasterKeyFile } from '../../src/seal/master-key-files';
import type { InMemoryMasterKey } from '../../src/seal/master-key';
import { MasterKeyRootMismatchError, openKeyring } from '../../src/seal/master-key-ring';
import { initShamirMasterKey, masterKeyFromShares, readShamirSealFile } from '../../src/seal/shamir-seal';
import { ensurePkcs11WrappingKey, unsealWithPkcs11, writePkcs11WrappedMasterKey } from '../../src/seal/pkcs11-seal';
import { loadConfig } from '../../src/config/keyhold-config';
import { readMasterKeyVersions } from '../../src/master-key/master-key.service';
import { type TestDatabase, createTestDatabase } from '../support/test-database';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

const REKEY_CLI = resolve(__dirname, '../../src/cli/keyhold-rekey.js');
const OLD_PASSPHRASE = 'the old passphrase, long enough';
const NEW_PASSPHRASE = 'a brand new passphrase, also long';
/** The floor the file format accepts: fast enough for a test. */
const FAST_KDF = { memoryKiB: 19_456, iterations: 2, parallelism: 1 };

describe('rekeying the root (passphrase-file sealer): old backups stop opening', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-rekey-'));
  const oldFile = join(dir, 'old.json');
  const newFile = join(dir, 'new.json');
  let database: TestDatabase;
  let kh: TestKeyhold | null = null;
  const ciphertexts: Array<{ ciphertext: string; plaintext: string }> = [];

  const rekey = (env: Record<string, string> = {}) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
      execFile(
        process.execPath,
        [REKEY_CLI, '--to', 'file', '--out', newFile],
        {
          env: {
            PATH: process.env.PATH ?? '',
            KEYHOLD_HOME: dir,
            DATABASE_URL: database.url,
            KEYHOLD_SEAL: 'file',
            KEYHOLD_MASTER_KEY_FILE: oldFile,
            KEYHOLD_MASTER_KEY_PASSPHRASE: OLD_PASSPHRASE,
            KEYHOLD_NEW_MASTER_KEY_PASSPHRASE: NEW_PASSPHRASE,
            ...env,
          },
        },
        (error, stdout, stderr) => done({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
    });

  const start = async (root: InMemoryMasterKey) => {
    kh = await startTestKeyhold({ databaseUrl: database.url, masterKey: root });
    return kh;
  };
  const stop = async () => {
    await kh?.stop();
    kh = null;
  };

  before(async () => {
    database = await createTestDatabase();
    await writeSealedMasterKeyFile(oldFile, OLD_PASSPHRASE, { kdf: FAST_KDF });
    const server = await start((await loadSealedMasterKey(oldFile, OLD_PASSPHRASE)) as InMemoryMasterKey);
    for (const name of ['alpha', 'beta']) {
      await server.http().post('/v1/keys').send({ name, algorithm: 'aes-256-gcm' }).expect(201);
      const plaintext = Buffer.from(`backup-era ${name}`).toString('base64');
      ciphertexts.push({ plaintext, ciphertext: (await server.http().post(`/v1/keys/${name}/encrypt`).send({ plaintext }).expect(200)).body.ciphertext });
    }
  });
  after(async () => {
    await stop();
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is refused while version 1, the root itself, is still live; nothing is written', async () => {
    const refused = await rekey();
    assert.equal(refused.code, 1, refused.stdout);
    assert.match(refused.stderr, /version 1 is the root itself and still live/);
    assert.ok(!existsSync(newFile));
  });

  it('after rotate + rewrap + retire of version 1, reseals the live versions under a new root in a new file', async () => {
    const server = kh as TestKeyhold;
    await server.server.masterKey.service.rotate();
    await server.server.masterKey.rewrap.runOnce();
    await server.server.masterKey.service.retire(1);
    const [before2] = await server.dataSource.query(`SELECT sealed_key FROM keyhold_master_key_versions WHERE version = 2`);
    await stop();

    const wrongPassphrase = await rekey({ KEYHOLD_MASTER_KEY_PASSPHRASE: 'not the passphrase at all' });
    assert.equal(wrongPassphrase.code, 1);
    assert.match(wrongPassphrase.stderr, /passphrase does not open/);

    const done = await rekey();
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stdout, /Resealed master-key versions 2 under the new root/);
    assert.ok(existsSync(newFile));
    assert.ok(!done.stdout.includes(NEW_PASSPHRASE) && !done.stderr.includes(NEW_PASSPHRASE), 'the passphrase was printed');

    const again = await rekey({ KEYHOLD_MASTER_KEY_PASSPHRASE: OLD_PASSPHRASE });
    assert.equal(again.code, 1, 'the new file exists and is never overwritten');

    const server2 = await start((await loadSealedMasterKey(newFile, NEW_PASSPHRASE)) as InMemoryMasterKey);
    const [after2] = await server2.dataSource.query(`SELECT sealed_key FROM keyhold_master_key_versions WHERE version = 2`);
    assert.notDeepEqual(after2.sealed_key, before2.sealed_key);
    assert.ok(!(await dumpDatabase(server2.dataSource)).includes(before2.sealed_key.toString('hex')));
    for (const { ciphertext, plaintext } of ciphertexts) {
      assert.equal((await server2.http().post('/v1/decrypt').send({ ciphertext }).expect(200)).body.plaintext, plaintext);
    }
    await server2.http().post('/v1/keys').send({ name: 'after-rekey', algorithm: 'aes-256-gcm' }).expect(201);
    await stop();
  });

  it('the old root no longer opens the database: a Keyhold started with it refuses to start', async () => {
    const oldRoot = (await loadSealedMasterKey(oldFile, OLD_PASSPHRASE)) as InMemoryMasterKey;
    const dataSource = await openDatabase(database.url);
    try {
      // The keyring is opened before any listener: the start fails right there.
      await assert.rejects(
        startKeyholdServer({
          databaseUrl: database.url,
          dataSource,
          masterKey: oldRoot,
          fileGrants: [],
          logger: new KeyholdLogger(createLogger({ level: 'fatal' })),
          tls: { cert: '', key: '', clientCa: '' },
          host: '127.0.0.1',
          port: 0,
          startScheduler: false,
        }),
        MasterKeyRootMismatchError,
      );
    } finally {
      await dataSource.destroy();
    }
  });
});

/** A database whose version 1 is retired (rotate, rewrap, retire), with ciphertexts made before. */
async function preparedDatabase(root: InMemoryMasterKey): Promise<{ database: TestDatabase; ciphertexts: Array<{ ciphertext: string; plaintext: string }> }> {
  const database = await createTestDatabase();
  const kh = await startTestKeyhold({ databaseUrl: database.url, masterKey: root });
  try {
    await kh.http().post('/v1/keys').send({ name: 'kept', algorithm: 'aes-256-gcm' }).expect(201);
    const plaintext = Buffer.from('made before the rekey').toString('base64');
    const { ciphertext } = (await kh.http().post('/v1/keys/kept/encrypt').send({ plaintext }).expect(200)).body;
    await kh.server.masterKey.service.rotate();
    await kh.server.masterKey.rewrap.runOnce();
    await kh.server.masterKey.service.retire(1);
    return { database, ciphertexts: [{ ciphertext, plaintext }] };
  } finally {
    await kh.stop();
  }
}

function runRekey(args: string[], env: Record<string, string>, input = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = execFile(process.execPath, [REKEY_CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env } }, (error, stdout, stderr) =>
      done({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(input);
  });
}

/** Starts on the rekeyed database with `root`, decrypts what was made before, and stops. */
async function decryptsWith(database: TestDatabase, root: InMemoryMasterKey, ciphertexts: Array<{ ciphertext: string; plaintext: string }>) {
  const kh = await startTestKeyhold({ databaseUrl: database.url, masterKey: root });
  try {
    for (const { ciphertext, plaintext } of ciphertexts) {
      assert.equal((await kh.http().post('/v1/decrypt').send({ ciphertext }).expect(200)).body.plaintext, plaintext);
    }
  } finally {
    await kh.stop();
  }
}

async function oldRootRefused(database: TestDatabase, oldRoot: InMemoryMasterKey): Promise<void> {
  const dataSource = await openDatabase(database.url);
  try {
    const rows = await readMasterKeyVersions(dataSource);
    assert.throws(() => openKeyring(oldRoot, rows), MasterKeyRootMismatchError);
  } finally {
    await dataSource.destroy();
  }
}

describe('rekeying the root (Shamir): T old shares in, N new shares out', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-rekey-shamir-'));
  let database: TestDatabase;
  after(async () => {
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reseals under a root split into new shares; the old shares open nothing any more', async () => {
    mkdirSync(join(dir, 'old'));
    mkdirSync(join(dir, 'new'));
    const old = await initShamirMasterKey(join(dir, 'old', 'master-key.shamir.json'), 3, 2);
    const oldRoot = await masterKeyFromShares(old.file, old.shares.slice(0, 2));
    const prepared = await preparedDatabase(oldRoot);
    database = prepared.database;
    const env = { KEYHOLD_HOME: dir, DATABASE_URL: database.url, KEYHOLD_SEAL: 'shamir', KEYHOLD_SHAMIR_FILE: join(dir, 'old', 'master-key.shamir.json') };
    const args = ['--to', 'shamir', '--shares', '5', '--threshold', '3', '--out', join(dir, 'new')];

    const wrong = await runRekey(args, env, `${old.shares[0]}\n${old.shares[0]}\n`);
    assert.equal(wrong.code, 1, wrong.stdout);
    assert.ok(!existsSync(join(dir, 'new', 'master-key.shamir.json')));

    const done = await runRekey(args, env, `${old.shares[1]}\n${old.shares[2]}\n`);
    assert.equal(done.code, 0, done.stderr);
    const shares = [...done.stdout.matchAll(/share \d of 5: (\S+)/g)].map((match) => match[1]);
    assert.equal(shares.length, 5);
    const newFile = readShamirSealFile(join(dir, 'new', 'master-key.shamir.json'));
    await decryptsWith(database, await masterKeyFromShares(newFile, [shares[0], shares[2], shares[4]]), prepared.ciphertexts);
    await oldRootRefused(database, await masterKeyFromShares(old.file, old.shares.slice(1, 3)));
  });
});

const LIBRARY = '/usr/lib/softhsm/libsofthsm2.so';
const softhsm = existsSync(LIBRARY) && existsSync('/usr/bin/softhsm2-util');

describe('rekeying the root (PKCS#11): a new token key', { skip: softhsm ? false : 'softhsm2 is not installed' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-rekey-pkcs11-'));
  let database: TestDatabase;
  after(async () => {
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('wraps the new root with a new key in the token; the old token key no longer opens the rekeyed database', async () => {
    const conf = join(dir, 'softhsm2.conf');
    mkdirSync(join(dir, 'tokens'));
    mkdirSync(join(dir, 'new'));
    writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
    process.env.SOFTHSM2_CONF = conf;
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'keyhold-rekey', '--pin', '246810', '--so-pin', '1357911'], { env: { ...process.env }, stdio: 'pipe' });
    const env = {
      SOFTHSM2_CONF: conf,
      KEYHOLD_HOME: dir,
      KEYHOLD_SEAL: 'pkcs11',
      KEYHOLD_PKCS11_LIBRARY: LIBRARY,
      KEYHOLD_PKCS11_TOKEN_LABEL: 'keyhold-rekey',
      KEYHOLD_PKCS11_PIN: '246810',
      KEYHOLD_PKCS11_WRAPPED_KEY_FILE: join(dir, 'master-key.pkcs11.json'),
    };
    const config = loadConfig({ ...process.env, ...env });
    const pkcs11 = config.seal.pkcs11 as NonNullable<typeof config.seal.pkcs11>;
    await ensurePkcs11WrappingKey(pkcs11);
    await writePkcs11WrappedMasterKey(pkcs11);
    const oldRoot = (await unsealWithPkcs11(pkcs11)) as InMemoryMasterKey;
    const prepared = await preparedDatabase(oldRoot);
    database = prepared.database;

    const done = await runRekey(['--to', 'pkcs11', '--key-label', 'keyhold-root-2', '--out', join(dir, 'new')], { ...env, DATABASE_URL: database.url });
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stdout, /destroy the old token key "keyhold-master-wrapping-key"/);
    const newRoot = (await unsealWithPkcs11({ ...pkcs11, keyLabel: 'keyhold-root-2', wrappedKeyFile: join(dir, 'new', 'master-key.pkcs11.json') })) as InMemoryMasterKey;
    await decryptsWith(database, newRoot, prepared.ciphertexts);
    await oldRootRefused(database, (await unsealWithPkcs11(pkcs11)) as InMemoryMasterKey);
  });
});
