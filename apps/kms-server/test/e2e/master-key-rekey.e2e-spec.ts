import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dumpDatabase } from '../support/database-dump';
import { openDatabase } from '../../src/database/data-source';
import { startKeyholdServer } from '../../src/keyhold-server';
import { KeyholdLogger, createLogger } from '../../src/logging/logger';
import { loadSealedMasterKey, writeSealedMasterKeyFile } from '../../src/seal/master-key-files';
import type { InMemoryMasterKey } from '../../src/seal/master-key';
import { MasterKeyRootMismatchError } from '../../src/seal/master-key-ring';
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
