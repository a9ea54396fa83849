import type { ShamirSealFile } from '@keyhold/contracts';
import { ConfigError, type KeyholdConfig } from '../config/keyhold-config';
import type { MasterKey } from './master-key';
import { isDevelopmentMasterKeyFile, loadDevelopmentMasterKey, loadSealedMasterKey } from './master-key-files';
import { unsealWithPkcs11 } from './pkcs11-seal';
import { SealState } from './seal-state';
import { readShamirSealFile } from './shamir-seal';

/** Unseals the master key the configuration names; production never accepts the development key. */
export async function loadMasterKey(config: KeyholdConfig): Promise<MasterKey> {
  const { file, passphrase } = config.masterKey;
  if (isDevelopmentMasterKeyFile(file)) {
    if (config.production) {
      throw new ConfigError(
        `${file} is a development master key, which is stored unsealed; NODE_ENV=production needs a passphrase-sealed key file, Shamir shares or a PKCS#11 token (README "Sealing")`,
      );
    }
    return loadDevelopmentMasterKey(file);
  }
  if (!passphrase) {
    throw new ConfigError(
      `${file} is sealed; set KEYHOLD_MASTER_KEY_PASSPHRASE, KEYHOLD_MASTER_KEY_PASSPHRASE_FILE or KEYHOLD_MASTER_KEY_PASSPHRASE_FD`,
    );
  }
  return loadSealedMasterKey(file, passphrase);
}

export interface SealSetup {
  state: SealState;
  /** Set with KEYHOLD_SEAL=shamir: Keyhold starts sealed and admins submit shares. */
  shamir: ShamirSealFile | null;
  shareTimeoutMs?: number;
}

/** Builds the seal state the configuration asks for: unsealed at start (file, pkcs11) or sealed (shamir). */
export async function loadSeal(config: KeyholdConfig): Promise<SealSetup> {
  switch (config.seal.kind) {
    case 'shamir':
      return {
        state: new SealState('shamir', null),
        shamir: readShamirSealFile(config.seal.shamirFile),
        shareTimeoutMs: config.seal.shareTimeoutMs,
      };
    case 'pkcs11': {
      const key = await unsealWithPkcs11(config.seal.pkcs11 as NonNullable<KeyholdConfig['seal']['pkcs11']>);
      return { state: new SealState('pkcs11', key), shamir: null };
    }
    case 'file': {
      const key = await loadMasterKey(config);
      return { state: new SealState(key.protection, key), shamir: null };
    }
  }
}
