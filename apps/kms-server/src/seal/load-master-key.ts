import { ConfigError, type KeyholdConfig } from '../config/keyhold-config';
import type { MasterKey } from './master-key';
import { isDevelopmentMasterKeyFile, loadDevelopmentMasterKey, loadSealedMasterKey } from './master-key-files';

/** Unseals the master key the configuration names; production never accepts the development key. */
export async function loadMasterKey(config: KeyholdConfig): Promise<MasterKey> {
  const { file, passphrase } = config.masterKey;
  if (isDevelopmentMasterKeyFile(file)) {
    if (config.production) {
      throw new ConfigError(
        `${file} is a development master key, which is stored unsealed; NODE_ENV=production needs a passphrase-sealed key file (README "Running in production")`,
      );
    }
    return loadDevelopmentMasterKey(file);
  }
  if (!passphrase) {
    throw new ConfigError(`${file} is sealed; set KEYHOLD_MASTER_KEY_PASSPHRASE or KEYHOLD_MASTER_KEY_PASSPHRASE_FILE`);
  }
  return loadSealedMasterKey(file, passphrase);
}
