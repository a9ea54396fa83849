import { MIN_PASSPHRASE_LENGTH, writeSealedMasterKeyFile } from '../seal/master-key-files';

/**
 * Creates a new master key sealed under a passphrase, for production:
 *   KEYHOLD_MASTER_KEY_PASSPHRASE=... node apps/kms-server/dist/src/cli/seal-master-key.js <output-file>
 * The passphrase is read from the environment (or KEYHOLD_MASTER_KEY_PASSPHRASE_FILE), never from argv,
 * so it does not end up in shell history or the process list.
 */
async function main(): Promise<void> {
  const output = process.argv[2];
  if (!output || process.argv.length > 3) {
    throw new Error('usage: seal-master-key <output-file>  (passphrase in KEYHOLD_MASTER_KEY_PASSPHRASE[_FILE])');
  }
  const { readFileSync } = await import('node:fs');
  const passphrase =
    process.env.KEYHOLD_MASTER_KEY_PASSPHRASE ??
    (process.env.KEYHOLD_MASTER_KEY_PASSPHRASE_FILE
      ? readFileSync(process.env.KEYHOLD_MASTER_KEY_PASSPHRASE_FILE, 'utf8').replace(/\r?\n$/, '')
      : undefined);
  if (!passphrase) {
    throw new Error(`set KEYHOLD_MASTER_KEY_PASSPHRASE (at least ${MIN_PASSPHRASE_LENGTH} characters)`);
  }
  await writeSealedMasterKeyFile(output, passphrase);
  process.stdout.write(`sealed master key written to ${output} (mode 600); keep the passphrase apart from it\n`);
}

main().catch((error: Error) => {
  process.stderr.write(`seal-master-key: ${error.message}\n`);
  process.exit(1);
});
