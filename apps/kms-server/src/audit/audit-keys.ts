import type { DataSource, EntityManager } from 'typeorm';
import {
  type EncryptionContext,
  canonicalContext,
  ed25519PublicKeyOf,
  generateEd25519KeyPair,
  hmacSha256,
  publicKeyFingerprint,
  randomBytes,
} from '@keyhold/crypto-core';
import { type RewrapTarget, sealedSecretTable } from '../master-key/rewrap-targets';
import { type MasterKey, sealForStorage } from '../seal/master-key';
import { SYSTEM_OPERATIONS } from './audit-operations';
import type { AuditScope } from './audit-scope';

type Purpose = 'context-hmac' | 'checkpoint-signing';

interface NewKeyRow {
  purpose: Purpose;
  sealed: Buffer;
  /** Read in the same synchronous step as the sealing: the version that sealed. */
  masterKeyVersion: number;
  publicKey: string | null;
}

/** The seal label of each audit key: binds the sealed bytes to their purpose. */
export const AUDIT_KEY_LABELS: Record<Purpose, string> = {
  'context-hmac': 'keyhold audit context-hmac v1',
  'checkpoint-signing': 'keyhold audit checkpoint-signing v1',
};

/** The audit keys, resealed under the newest master-key version by the master-key rewrap. */
export const auditKeysRewrapTarget: RewrapTarget = sealedSecretTable({
  name: 'audit-keys',
  table: 'keyhold_audit_keys',
  idColumn: 'purpose',
  sealedColumn: 'sealed',
  label: (row) => AUDIT_KEY_LABELS[row.purpose as Purpose],
});

/**
 * The audit trail's two keys, each created once per database and stored sealed under the master key in
 * `keyhold_audit_keys` (with the master key version it is sealed under, for master-key rotation to rewrap):
 * a 32-byte HMAC key for encryption contexts, and the Ed25519 key that signs checkpoints (its public key is
 * stored in the clear beside it). Opened lazily, held in memory until Keyhold seals.
 */
export class AuditKeys {
  private hmacKey: Buffer | null = null;
  private signingKey: Buffer | null = null;
  private publicKey: string | null = null;
  /** The sealed rows, read once: refusals while sealed must not cost a query each. */
  private readonly rows = new Map<Purpose, { sealed: Buffer; master_key_version: number; public_key: string | null }>();

  constructor(
    private readonly dataSource: DataSource,
    private readonly masterKey: MasterKey,
    /** Records the keys' creation (actor `system:bootstrap`); writes nothing with audit off. */
    private readonly audit: AuditScope,
  ) {}

  /**
   * Creates the keys if this database has none yet, in one transaction with their record (`audit.keys.create`),
   * written only by the instance whose inserts took: several instances may start at once. A database that has
   * its keys writes nothing. A record that cannot be written fails the creation.
   */
  async ensure(now: Date): Promise<void> {
    const existing: Array<{ purpose: Purpose }> = await this.dataSource.query(`SELECT purpose FROM keyhold_audit_keys`);
    const have = new Set(existing.map((row) => row.purpose));
    const missing: NewKeyRow[] = [];
    if (!have.has('context-hmac')) {
      const secret = randomBytes(32);
      missing.push({
        purpose: 'context-hmac',
        ...sealForStorage(this.masterKey, secret, AUDIT_KEY_LABELS['context-hmac']),
        publicKey: null,
      });
      secret.fill(0);
    }
    if (!have.has('checkpoint-signing')) {
      const pair = generateEd25519KeyPair();
      missing.push({
        purpose: 'checkpoint-signing',
        ...sealForStorage(this.masterKey, pair.privateKeyDer, AUDIT_KEY_LABELS['checkpoint-signing']),
        publicKey: pair.publicKeyPem,
      });
      pair.privateKeyDer.fill(0);
    }
    if (missing.length === 0) return;
    await this.dataSource.transaction(async (manager) => {
      let created = 0;
      for (const row of missing) created += (await this.insert(manager, row, now)).length;
      if (created > 0) await this.audit.record(manager, { operation: SYSTEM_OPERATIONS.createAuditKeys, keyName: null, keyVersion: null });
    });
  }

  /**
   * HMAC-SHA256 (hex) of the canonical context (sorted keys, as the ciphertext's AAD uses it): equal contexts
   * give equal values, so an auditor can match records by context without the log holding it. Null without a
   * context, or while sealed (the key cannot be opened; such requests are refused anyway).
   */
  async contextHmac(context: EncryptionContext | undefined | null): Promise<string | null> {
    if (!context || Object.keys(context).length === 0) return null;
    const key = this.hmacKey ?? (await this.openHmacKey());
    if (!key) return null;
    return hmacSha256(key, canonicalContext(context)).toString('hex');
  }

  /** The synchronous form for the hot path, once the key is open (`warm`). */
  contextHmacIfOpen(context: EncryptionContext | undefined | null): string | null | undefined {
    if (!context || Object.keys(context).length === 0) return null;
    if (!this.hmacKey) return undefined;
    return hmacSha256(this.hmacKey, canonicalContext(context)).toString('hex');
  }

  async signing(): Promise<{ privateKeyDer: Buffer; publicKeyPem: string; fingerprint: string } | null> {
    if (!this.signingKey) {
      const key = await this.openSealed('checkpoint-signing');
      if (!key) return null;
      this.signingKey = key;
      this.publicKey = ed25519PublicKeyOf(this.signingKey);
    }
    const publicKeyPem = this.publicKey as string;
    return { privateKeyDer: this.signingKey, publicKeyPem, fingerprint: publicKeyFingerprint(publicKeyPem) };
  }

  /** The checkpoint public key, readable while sealed too (it is stored in the clear). */
  async publicKeyPem(): Promise<string | null> {
    return (await this.row('checkpoint-signing'))?.public_key ?? null;
  }

  /** Forgets the opened keys and the sealed rows (Keyhold sealed, or a master-key rewrap changed the sealed bytes). */
  forget(): void {
    this.rows.clear();
    this.hmacKey?.fill(0);
    this.signingKey?.fill(0);
    this.hmacKey = null;
    this.signingKey = null;
  }

  private async openHmacKey(): Promise<Buffer | null> {
    this.hmacKey = await this.openSealed('context-hmac');
    return this.hmacKey;
  }

  /** Null while sealed. The sealed row is opened under the master-key version stored with it. */
  private async openSealed(purpose: Purpose): Promise<Buffer | null> {
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const row = await this.row(purpose);
      if (!row) return null;
      try {
        await this.masterKey.ensureVersions?.([row.master_key_version]);
        return this.masterKey.open(row.sealed, row.master_key_version, AUDIT_KEY_LABELS[purpose]);
      } catch {
        // Sealed; or the cached row has been rewrapped under a newer master-key version (and the old one
        // retired) since it was read: read it once more.
        this.rows.delete(purpose);
      }
    }
    return null;
  }

  private async row(purpose: Purpose): Promise<{ sealed: Buffer; master_key_version: number; public_key: string | null } | null> {
    const cached = this.rows.get(purpose);
    if (cached) return cached;
    const [row] = await this.dataSource.query(`SELECT sealed, master_key_version, public_key FROM keyhold_audit_keys WHERE purpose = $1`, [purpose]);
    if (row) this.rows.set(purpose, row);
    return row ?? null;
  }

  /** The inserted row's purpose, or nothing when another instance created it first. */
  private insert(manager: EntityManager, row: NewKeyRow, now: Date): Promise<Array<{ purpose: Purpose }>> {
    return manager.query(
      `INSERT INTO keyhold_audit_keys (purpose, sealed, master_key_version, public_key, created_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (purpose) DO NOTHING RETURNING purpose`,
      [row.purpose, row.sealed, row.masterKeyVersion, row.publicKey, now],
    );
  }
}
