import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { loadConfig } from '../config/keyhold-config';
import { ensurePkcs11WrappingKey, writePkcs11WrappedMasterKey } from '../seal/pkcs11-seal';
import { initShamirMasterKey } from '../seal/shamir-seal';

const USAGE = `usage:
  keyhold-init --shares N --threshold T --out <dir>
      a new master key split into N Shamir shares, any T of which unseal it; writes <dir>/master-key.shamir.json
      (the verifier: an HMAC check value, never the key) and prints each share once.
      Then run Keyhold with KEYHOLD_SEAL=shamir KEYHOLD_SHAMIR_FILE=<dir>/master-key.shamir.json
  keyhold-init --seal pkcs11 --out <dir>
      a new master key encrypted (AES-GCM) by an AES key inside a PKCS#11 token (created if absent); the token
      is named by KEYHOLD_PKCS11_LIBRARY, KEYHOLD_PKCS11_TOKEN_LABEL or _SLOT, KEYHOLD_PKCS11_PIN[_FILE],
      KEYHOLD_PKCS11_KEY_LABEL; writes <dir>/master-key.pkcs11.json.
      Then run Keyhold with KEYHOLD_SEAL=pkcs11 KEYHOLD_PKCS11_WRAPPED_KEY_FILE=<dir>/master-key.pkcs11.json`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seal: { type: 'string', default: 'shamir' },
      shares: { type: 'string' },
      threshold: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help || !values.out) throw new Error(USAGE);
  const out = resolve(values.out);
  if (values.seal === 'shamir') {
    const shares = Number(values.shares);
    const threshold = Number(values.threshold);
    if (!Number.isInteger(shares) || shares < 2 || shares > 255) throw new Error(`--shares must be an integer from 2 to 255\n${USAGE}`);
    if (!Number.isInteger(threshold) || threshold < 2 || threshold > shares) {
      throw new Error(`--threshold must be an integer from 2 to --shares\n${USAGE}`);
    }
    const path = join(out, 'master-key.shamir.json');
    const result = await initShamirMasterKey(path, shares, threshold);
    process.stdout.write(
      [
        `Master key created and split into ${shares} shares; any ${threshold} unseal Keyhold.`,
        `Verifier written to ${path} (mode 600; it holds no key).`,
        'Each share is printed ONCE, here, and stored nowhere. Hand each to a different person; fewer than',
        `${threshold} of them reveal nothing about the key.`,
        '',
        ...result.shares.map((share, index) => `share ${index + 1} of ${shares}: ${share}`),
        '',
        `Start Keyhold with KEYHOLD_SEAL=shamir KEYHOLD_SHAMIR_FILE=${path}`,
        '',
      ].join('\n'),
    );
    return;
  }
  if (values.seal === 'pkcs11') {
    const config = loadConfig({
      ...process.env,
      KEYHOLD_SEAL: 'pkcs11',
      KEYHOLD_PKCS11_WRAPPED_KEY_FILE: join(out, 'master-key.pkcs11.json'),
    });
    const pkcs11 = config.seal.pkcs11 as NonNullable<typeof config.seal.pkcs11>;
    const created = await ensurePkcs11WrappingKey(pkcs11);
    await writePkcs11WrappedMasterKey(pkcs11);
    process.stdout.write(
      `${created === 'created' ? 'Created' : 'Using'} the token key ${JSON.stringify(pkcs11.keyLabel)}; master key wrapped into ${pkcs11.wrappedKeyFile}\n` +
        `Start Keyhold with KEYHOLD_SEAL=pkcs11 KEYHOLD_PKCS11_WRAPPED_KEY_FILE=${pkcs11.wrappedKeyFile}\n`,
    );
    return;
  }
  throw new Error(`--seal must be shamir or pkcs11\n${USAGE}`);
}

main().catch((error: Error) => {
  process.stderr.write(`keyhold-init: ${error.message}\n`);
  process.exit(1);
});
