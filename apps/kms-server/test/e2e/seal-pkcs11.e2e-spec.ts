import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as pkcs11js from 'pkcs11js';
import { loadConfig } from '../../src/config/keyhold-config';
import { loadSeal } from '../../src/seal/load-master-key';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

const LIBRARY = '/usr/lib/softhsm/libsofthsm2.so';
const INIT_CLI = resolve(__dirname, '../../src/cli/keyhold-init.js');
const available = existsSync(LIBRARY) && existsSync('/usr/bin/softhsm2-util');

describe('KEYHOLD_SEAL=pkcs11: the master key wrapped by an AES key inside a softhsm2 token', { skip: available ? false : 'softhsm2 is not installed (apt-get install softhsm2; .ci/run does)' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-pkcs11-'));
  const conf = join(dir, 'softhsm2.conf');
  const wrappedKeyFile = join(dir, 'master-key.pkcs11.json');
  let env: Record<string, string>;
  let kh: TestKeyhold | null = null;
  let databaseUrl: string;
  let drop: () => Promise<void>;
  let ciphertext: string;

  before(() => {
    mkdirSync(join(dir, 'tokens'));
    writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
    // softhsm2 reads SOFTHSM2_CONF when the library initialises: set for this process and the CLI alike.
    process.env.SOFTHSM2_CONF = conf;
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'keyhold-test', '--pin', '246810', '--so-pin', '1357911'], {
      env: { ...process.env, SOFTHSM2_CONF: conf },
      stdio: 'pipe',
    });
    env = {
      SOFTHSM2_CONF: conf,
      KEYHOLD_HOME: dir,
      KEYHOLD_SEAL: 'pkcs11',
      KEYHOLD_PKCS11_LIBRARY: LIBRARY,
      KEYHOLD_PKCS11_TOKEN_LABEL: 'keyhold-test',
      KEYHOLD_PKCS11_PIN: '246810',
      KEYHOLD_PKCS11_WRAPPED_KEY_FILE: wrappedKeyFile,
    };
  });
  after(async () => {
    await kh?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keyhold-init --seal pkcs11 creates a non-extractable AES key in the token and wraps a new master key with it', () => {
    const output = execFileSync(process.execPath, [INIT_CLI, '--seal', 'pkcs11', '--out', dir], { env: { ...process.env, ...env }, encoding: 'utf8' });
    assert.match(output, /Created the token key "keyhold-master-wrapping-key"/);
    const file = JSON.parse(readFileSync(wrappedKeyFile, 'utf8'));
    assert.equal(file.mechanism, 'CKM_AES_GCM');
    assert.equal(Buffer.from(file.sealed, 'base64').length, 48);

    const module = new pkcs11js.PKCS11();
    module.load(LIBRARY);
    module.C_Initialize();
    try {
      const slot = module.C_GetSlotList(true).find((s) => module.C_GetTokenInfo(s).label.trim() === 'keyhold-test') as Buffer;
      const session = module.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
      module.C_Login(session, pkcs11js.CKU_USER, '246810');
      module.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_LABEL, value: 'keyhold-master-wrapping-key' }]);
      const key = module.C_FindObjects(session) as Buffer;
      module.C_FindObjectsFinal(session);
      const [sensitive, extractable] = module.C_GetAttributeValue(session, key, [{ type: pkcs11js.CKA_SENSITIVE }, { type: pkcs11js.CKA_EXTRACTABLE }]);
      assert.equal((sensitive.value as Buffer)[0], 1);
      assert.equal((extractable.value as Buffer)[0], 0);
      module.C_Logout(session);
      module.C_CloseSession(session);
    } finally {
      module.C_Finalize();
    }
  });

  it('starts unsealed through the token; keys work', async () => {
    const seal = await loadSeal(loadConfig(env));
    assert.equal(seal.state.sealed, false);
    assert.equal(seal.state.protection, 'pkcs11');
    kh = await startTestKeyhold({ seal });
    databaseUrl = kh.database.url;
    drop = kh.database.drop;
    const health = await kh.http().get('/v1/health').expect(200);
    assert.equal(health.body.masterKeyProtection, 'pkcs11');
    await kh.http().post('/v1/keys').send({ name: 'hsm-backed', algorithm: 'aes-256-gcm' }).expect(201);
    ciphertext = (await kh.http().post('/v1/keys/hsm-backed/encrypt').send({ plaintext: 'aHNt' }).expect(200)).body.ciphertext;
  });

  it('after a restart the token unseals the same master key: old ciphertexts decrypt', async () => {
    await kh?.server.close();
    await kh?.dataSource.destroy();
    kh = null;
    const seal = await loadSeal(loadConfig(env));
    kh = await startTestKeyhold({ seal, databaseUrl });
    kh.database.drop = drop;
    const decrypted = await kh.http().post('/v1/keys/hsm-backed/decrypt').send({ ciphertext }).expect(200);
    assert.equal(decrypted.body.plaintext, 'aHNt');
  });

  it('finds the token by slot ID as well as by label', async () => {
    const module = new pkcs11js.PKCS11();
    module.load(LIBRARY);
    module.C_Initialize();
    let slotId: bigint;
    try {
      const slot = module.C_GetSlotList(true).find((s) => module.C_GetTokenInfo(s).label.trim() === 'keyhold-test') as Buffer;
      slotId = slot.readBigUInt64LE(0);
    } finally {
      module.C_Finalize();
    }
    const seal = await loadSeal(loadConfig({ ...env, KEYHOLD_PKCS11_TOKEN_LABEL: undefined, KEYHOLD_PKCS11_SLOT: String(slotId) }));
    assert.equal(seal.state.sealed, false);
    await assert.rejects(loadSeal(loadConfig({ ...env, KEYHOLD_PKCS11_TOKEN_LABEL: undefined, KEYHOLD_PKCS11_SLOT: '7' })), /no PKCS#11 token in slot 7/);
  });

  it('a wrong PIN, a missing token, a missing token key or an altered file do not unseal', async () => {
    await assert.rejects(loadSeal(loadConfig({ ...env, KEYHOLD_PKCS11_PIN: '000000' })), /refused the PIN/);
    await assert.rejects(loadSeal(loadConfig({ ...env, KEYHOLD_PKCS11_TOKEN_LABEL: 'nope' })), /no PKCS#11 token labelled "nope"/);
    await assert.rejects(loadSeal(loadConfig({ ...env, KEYHOLD_PKCS11_WRAPPED_KEY_FILE: join(dir, 'missing.json') })), /cannot read/);
    const file = JSON.parse(readFileSync(wrappedKeyFile, 'utf8'));
    const sealed = Buffer.from(file.sealed, 'base64');
    sealed[3] ^= 1;
    const altered = join(dir, 'altered.json');
    writeFileSync(altered, JSON.stringify({ ...file, sealed: sealed.toString('base64') }), { mode: 0o600 });
    await assert.rejects(loadSeal(loadConfig({ ...env, KEYHOLD_PKCS11_WRAPPED_KEY_FILE: altered })), /does not open/);
    const otherLabel = join(dir, 'other-label.json');
    writeFileSync(otherLabel, JSON.stringify({ ...file, keyLabel: 'no-such-key' }), { mode: 0o600 });
    await assert.rejects(loadSeal(loadConfig({ ...env, KEYHOLD_PKCS11_WRAPPED_KEY_FILE: otherLabel })), /no key labelled "no-such-key"/);
  });

  it('configuration names what is missing', () => {
    assert.throws(() => loadConfig({ ...env, KEYHOLD_PKCS11_PIN: '' }), /KEYHOLD_PKCS11_PIN/);
    assert.throws(() => loadConfig({ ...env, KEYHOLD_PKCS11_TOKEN_LABEL: undefined }), /TOKEN_LABEL or KEYHOLD_PKCS11_SLOT/);
  });
});
