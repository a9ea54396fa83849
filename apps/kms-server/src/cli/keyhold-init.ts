import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { loadConfig } from '../config/keyhold-config';
import { ensurePkcs11WrappingKey, writePkcs11WrappedMasterKey } from '../seal/pkcs11-seal';

// Only the PKCS#11 sealer is initialised here: it needs the token, which sits on the server's host. Shamir
// shares are issued by `kmsctl init` on the operator's machine, so the server host never sees them.
const USAGE = `usage:
  keyhold-init --seal pkcs11 --out <dir>
      a new master key encrypted (AES-GCM) by an AES key inside a PKCS#11 token (created if absent); the token
      is named by KEYHOLD_PKCS11_LIBRARY, KEYHOLD_PKCS11_TOKEN_LABEL or _SLOT, KEYHOLD_PKCS11_PIN[_FILE],
      KEYHOLD_PKCS11_KEY_LABEL; writes <dir>/master-key.pkcs11.json.
      Then run Keyhold with KEYHOLD_SEAL=pkcs11 KEYHOLD_PKCS11_WRAPPED_KEY_FILE=<dir>/master-key.pkcs11.json
  For KEYHOLD_SEAL=shamir, create the master key and its shares with kmsctl init (not on the server host):
      kmsctl init --shares N --threshold T --out <dir>`;

const SHAMIR_MOVED = 'Shamir shares are created by kmsctl init --shares N --threshold T --out <dir>, no longer by keyhold-init';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seal: { type: 'string' },
      // Still parsed so that the old Shamir invocation is pointed at kmsctl init instead of "unknown option".
      shares: { type: 'string' },
      threshold: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) throw new Error(USAGE);
  if (values.seal === 'shamir' || values.shares !== undefined || values.threshold !== undefined) throw new Error(`${SHAMIR_MOVED}\n${USAGE}`);
  if (values.seal !== 'pkcs11') throw new Error(`--seal pkcs11 is needed\n${USAGE}`);
  if (!values.out) throw new Error(`--out is needed\n${USAGE}`);
  const config = loadConfig({
    ...process.env,
    KEYHOLD_SEAL: 'pkcs11',
    KEYHOLD_PKCS11_WRAPPED_KEY_FILE: join(resolve(values.out), 'master-key.pkcs11.json'),
  });
  const pkcs11 = config.seal.pkcs11 as NonNullable<typeof config.seal.pkcs11>;
  const created = await ensurePkcs11WrappingKey(pkcs11);
  await writePkcs11WrappedMasterKey(pkcs11);
  process.stdout.write(
    `${created === 'created' ? 'Created' : 'Using'} the token key ${JSON.stringify(pkcs11.keyLabel)}; master key wrapped into ${pkcs11.wrappedKeyFile}\n` +
      `Start Keyhold with KEYHOLD_SEAL=pkcs11 KEYHOLD_PKCS11_WRAPPED_KEY_FILE=${pkcs11.wrappedKeyFile}\n`,
  );
}

main().catch((error: Error) => {
  process.stderr.write(`keyhold-init: ${error.message}\n`);
  process.exit(1);
});
