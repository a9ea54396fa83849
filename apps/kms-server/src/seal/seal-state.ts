import { Logger } from '@nestjs/common';
import { ApiError } from '@keyhold/contracts';
import type { MasterKey, MasterKeyProtection } from './master-key';

/**
 * Owns whether Keyhold is sealed. Sealed, there is no master key in memory: every key operation is refused
 * with 503 SEALED, nothing is unwrapped, the scheduler idles. Sealers (development file, passphrase file,
 * Shamir shares, PKCS#11 token) only produce a MasterKey and hand it to `unseal`.
 */
export class SealState {
  private readonly logger = new Logger('Seal');
  private key: MasterKey | null;
  private readonly listeners: Array<(sealed: boolean) => void | Promise<void>> = [];

  constructor(
    readonly protection: MasterKeyProtection,
    key: MasterKey | null,
  ) {
    this.key = key;
  }

  get sealed(): boolean {
    return this.key === null;
  }

  /** The master key, or ApiError SEALED (503) while sealed. */
  masterKey(): MasterKey {
    if (!this.key) throw sealedError();
    return this.key;
  }

  async unseal(key: MasterKey): Promise<void> {
    if (this.key) throw new ApiError('INVALID_STATE', 'Keyhold is already unsealed');
    this.key = key;
    this.logger.log({ msg: 'unsealed', protection: this.protection, masterKeyVersion: key.version });
    try {
      await this.notify(false);
    } catch (error) {
      // Half set up is not unsealed: the master-key versions unopened, or what a new database creates at its
      // first unseal (audit keys, service-identity CA) not created or not recorded. Fail closed.
      this.logger.error({ msg: 'unsealing could not finish; sealed again', err: (error as Error).message });
      await this.seal();
      throw new ApiError(
        'UNAVAILABLE',
        'the shares rebuilt the master key, but unsealing could not finish (see the server log): Keyhold is sealed again; submit the shares again once the cause is fixed',
      );
    }
  }

  /** Drops the master key from memory and everything unwrapped under it. */
  async seal(): Promise<void> {
    if (!this.key) return;
    const key = this.key;
    this.key = null;
    await this.notify(true);
    key.dispose?.();
    this.logger.warn({ msg: 'sealed: key operations refused until unsealed', protection: this.protection });
  }

  /**
   * Called after every change (cache clearing on seal, CA set-up on unseal), in the order registered. An
   * unseal listener that throws stops the unseal: `unseal` seals again and fails. Seal listeners all run.
   */
  onChange(listener: (sealed: boolean) => void | Promise<void>): void {
    this.listeners.push(listener);
  }

  private async notify(sealed: boolean): Promise<void> {
    for (const listener of this.listeners) {
      try {
        await listener(sealed);
      } catch (error) {
        if (!sealed) throw error;
        this.logger.error({ msg: 'seal listener failed', err: (error as Error).message });
      }
    }
  }
}

/** Postgres NOTIFY channel: an approved `seal` operation seals every instance listening on the database. */
export const SEAL_CHANNEL = 'keyhold_seal';

export function sealedError(): ApiError {
  return new ApiError('SEALED', 'Keyhold is sealed: no key operation runs until administrators unseal it (GET /api/v1/seal on the admin plane)');
}
