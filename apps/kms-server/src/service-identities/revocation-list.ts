import { Logger } from '@nestjs/common';
import type { RevocationCheck } from '@keyhold/auth';
import type { CertificateAuthorityService } from './certificate-authority.service';

/**
 * Revoked service certificates, in memory, for the mTLS strategy's check on every request. A revocation on
 * any instance is announced through Postgres and added here at once; a full reload follows every reconnection
 * of the notification listener and runs periodically (PeriodicResync), in case an announcement was lost.
 */
export class RevocationList implements RevocationCheck {
  private readonly logger = new Logger(RevocationList.name);
  private readonly revoked = new Set<string>();

  constructor(private readonly authority: CertificateAuthorityService) {}

  isRevoked(fingerprintSha256: string): boolean {
    return this.revoked.size > 0 && this.revoked.has(fingerprintSha256);
  }

  add(fingerprintSha256: string): void {
    this.revoked.add(fingerprintSha256);
  }

  async reload(): Promise<void> {
    try {
      const stored = await this.authority.revokedFingerprints();
      // Added to the list as it is now, not as it was when the read began: a revocation announced (`add`)
      // while the read was in flight stays.
      for (const fingerprint of stored) this.revoked.add(fingerprint);
    } catch (error) {
      this.logger.warn({ msg: 'revocations not reloaded; keeping the previous list until the next resync', err: (error as Error).message });
    }
  }
}
