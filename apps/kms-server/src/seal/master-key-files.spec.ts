import assert from 'node:assert/strict';
import { chmodSync, closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../config/keyhold-config';
import { loadMasterKey, loadSeal } from './load-master-key';
import { initShamirMasterKey } from './shamir-seal';
import {
  MasterKeyFileError,
  createDevelopmentMasterKeyFile,
  loadDevelopmentMasterKey,
  loadSealedMasterKey,
  writeSealedMasterKeyFile,
} from './master-key-files';

/** Every setting production demands except the master key's. */
const PRODUCTION = {
  NODE_ENV: 'production',
  DATABASE_URL: 'postgres://u:p@localhost:5432/k',
  KEYHOLD_TLS_CERT_FILE: '/x/server.crt',
  KEYHOLD_TLS_KEY_FILE: '/x/server.key',
  KEYHOLD_CLIENT_CA_FILE: '/x/ca.crt',
  KEYHOLD_GRANTS_FILE: '/x/grants.json',
};
const FAST_KDF = { memoryKiB: 19_456, iterations: 2, parallelism: 1 };
const binding = { keyId: '00000000-0000-4000-8000-000000000001', version: 1, algorithm: 'aes-256-gcm', purpose: 'key-version' };

describe('master key files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-master-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the development key owner-only and refuses it once others can read it', () => {
    const path = join(dir, 'dev.json');
    createDevelopmentMasterKeyFile(path);
    const key = loadDevelopmentMasterKey(path);
    const wrapped = key.wrap(Buffer.alloc(32, 1), binding);
    assert.deepEqual(key.unwrap(wrapped, 1, binding), Buffer.alloc(32, 1));
    chmodSync(path, 0o644);
    assert.throws(() => loadDevelopmentMasterKey(path), MasterKeyFileError);
  });

  it('seals under an Argon2id passphrase: the right one opens it, a wrong one does not', async () => {
    const path = join(dir, 'sealed.json');
    await writeSealedMasterKeyFile(path, 'correct horse battery staple', { kdf: FAST_KDF });
    const file = readFileSync(path, 'utf8');
    assert.match(file, /argon2id/);
    const key = await loadSealedMasterKey(path, 'correct horse battery staple');
    assert.equal(key.protection, 'passphrase-file');
    const wrapped = key.wrap(Buffer.alloc(32, 2), binding);
    const again = await loadSealedMasterKey(path, 'correct horse battery staple');
    assert.deepEqual(again.unwrap(wrapped, 1, binding), Buffer.alloc(32, 2));
    await assert.rejects(loadSealedMasterKey(path, 'wrong horse battery staple'), /passphrase does not open/);
  });

  it('refuses short passphrases', async () => {
    await assert.rejects(writeSealedMasterKeyFile(join(dir, 'short.json'), 'too short'), /at least 16/);
  });

  it('refuses the development key when NODE_ENV=production', async () => {
    const devPath = join(dir, 'prod-dev.json');
    createDevelopmentMasterKeyFile(devPath);
    const config = loadConfig({ ...PRODUCTION, KEYHOLD_MASTER_KEY_FILE: devPath, KEYHOLD_MASTER_KEY_PASSPHRASE: 'irrelevant passphrase here' });
    await assert.rejects(loadMasterKey(config), /development master key/);
  });
});

describe(loadConfig.name, () => {
  it('fills development defaults under KEYHOLD_HOME', () => {
    const config = loadConfig({ KEYHOLD_HOME: '/tmp/kh-home' });
    assert.equal(config.production, false);
    assert.equal(config.databaseUrl, null);
    assert.equal(config.service.port, 8443);
    assert.equal(config.service.host, '127.0.0.1');
    assert.equal(config.masterKey.file, '/tmp/kh-home/master-key.dev.json');
    assert.equal(config.grantsFile, '/tmp/kh-home/grants.json');
  });

  it('demands every production setting, naming the missing ones', () => {
    assert.throws(() => loadConfig({ NODE_ENV: 'production' }), /DATABASE_URL, KEYHOLD_TLS_CERT_FILE.*KEYHOLD_GRANTS_FILE/);
  });

  it('accepts KEYHOLD_AUDIT=off in development only; production refuses to start without its audit trail', () => {
    assert.equal(loadConfig({ KEYHOLD_HOME: '/tmp/kh-home' }).audit.enabled, true);
    assert.equal(loadConfig({ KEYHOLD_HOME: '/tmp/kh-home', KEYHOLD_AUDIT: 'off' }).audit.enabled, false);
    const production = { ...PRODUCTION, KEYHOLD_MASTER_KEY_FILE: '/x/master.json', KEYHOLD_MASTER_KEY_PASSPHRASE: 'a passphrase long enough' };
    assert.equal(loadConfig(production).audit.enabled, true);
    assert.throws(() => loadConfig({ ...production, KEYHOLD_AUDIT: 'off' }), /KEYHOLD_AUDIT=off .*production/);
    assert.throws(() => loadConfig({ KEYHOLD_AUDIT: 'maybe' }), /KEYHOLD_AUDIT/);
  });

  it('refuses malformed settings with a clear message', () => {
    assert.throws(() => loadConfig({ KEYHOLD_SERVICE_PORT: 'eighty' }), /KEYHOLD_SERVICE_PORT/);
    assert.throws(() => loadConfig({ DATABASE_URL: 'not a url' }), /DATABASE_URL/);
  });
});

describe('KEYHOLD_SEAL', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-seal-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses an unknown sealer, in development as in production', () => {
    assert.throws(() => loadConfig({ KEYHOLD_SEAL: 'vault' }), /KEYHOLD_SEAL must be one of file, shamir, pkcs11/);
    assert.throws(() => loadConfig({ ...PRODUCTION, KEYHOLD_SEAL: 'none' }), /KEYHOLD_SEAL must be one of/);
  });

  it('production with shamir needs the verifier file, not a passphrase; it starts sealed', async () => {
    assert.throws(() => loadConfig({ ...PRODUCTION, KEYHOLD_SEAL: 'shamir' }), /KEYHOLD_SHAMIR_FILE/);
    const path = join(dir, 'shamir.json');
    await initShamirMasterKey(path, 3, 2);
    const config = loadConfig({ ...PRODUCTION, KEYHOLD_SEAL: 'shamir', KEYHOLD_SHAMIR_FILE: path });
    const seal = await loadSeal(config);
    assert.equal(seal.state.sealed, true);
    assert.equal(seal.shamir?.threshold, 2);
    await assert.rejects(loadSeal(loadConfig({ KEYHOLD_SEAL: 'shamir', KEYHOLD_SHAMIR_FILE: join(dir, 'absent.json') })), /cannot read the Shamir seal file/);
  });

  it('production with pkcs11 needs the wrapped key file, a PIN and a token', () => {
    assert.throws(() => loadConfig({ ...PRODUCTION, KEYHOLD_SEAL: 'pkcs11' }), /KEYHOLD_PKCS11_WRAPPED_KEY_FILE/);
  });

  it('reads the passphrase from an inherited file descriptor (KEYHOLD_MASTER_KEY_PASSPHRASE_FD)', async () => {
    const passphrasePath = join(dir, 'passphrase');
    writeFileSync(passphrasePath, 'correct horse battery staple\n', { mode: 0o600 });
    const fd = openSync(passphrasePath, 'r');
    try {
      const keyPath = join(dir, 'fd-sealed.json');
      await writeSealedMasterKeyFile(keyPath, 'correct horse battery staple', { kdf: FAST_KDF });
      const config = loadConfig({ ...PRODUCTION, KEYHOLD_MASTER_KEY_FILE: keyPath, KEYHOLD_MASTER_KEY_PASSPHRASE_FD: String(fd) });
      assert.equal(config.masterKey.passphrase, 'correct horse battery staple');
      const seal = await loadSeal(config);
      assert.equal(seal.state.protection, 'passphrase-file');
      assert.equal(seal.state.sealed, false);
    } finally {
      closeSync(fd);
    }
    assert.throws(() => loadConfig({ KEYHOLD_MASTER_KEY_PASSPHRASE_FD: '987' }), /cannot read KEYHOLD_MASTER_KEY_PASSPHRASE_FD/);
  });
});
