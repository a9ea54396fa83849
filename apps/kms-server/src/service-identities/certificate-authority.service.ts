import { Logger } from '@nestjs/common';
import type { DataSource, EntityManager } from 'typeorm';
import { ApiError, type IssuedCertificateView } from '@keyhold/contracts';
import {
  type CertificateAndKey,
  createCertificateAuthority,
  CertificateRequestError,
  describeCertificate,
  issueCertificate,
  issueCertificateForRequest,
} from '@keyhold/crypto-core';
import { SYSTEM_OPERATIONS } from '../audit/audit-operations';
import type { AuditScope } from '../audit/audit-scope';
import { type RewrapTarget, sealedSecretTable } from '../master-key/rewrap-targets';
import { type MasterKey, sealForStorage } from '../seal/master-key';

export const CERTIFICATE_REVOKED_CHANNEL = 'keyhold_certificate_revoked';
const SEAL_LABEL = 'certificate-authority-private-key';

/** The CA private key, resealed under the newest master-key version by the rewrap job. */
export const certificateAuthorityRewrapTarget: RewrapTarget = sealedSecretTable({
  name: 'certificate-authority',
  table: 'keyhold_certificate_authority',
  idColumn: 'id',
  sealedColumn: 'sealed_private_key',
  label: () => SEAL_LABEL,
});

export type { IssuedCertificateView };

export interface IssueRequest {
  /** The service identity, a URI (a SPIFFE ID, say): it becomes the certificate's URI SAN. */
  identity: string;
  validityHours: number;
  /** A PKCS#10 request whose key to certify; without one Keyhold makes the key and hands it out once. */
  requestPem?: string;
  issuedBy: string | null;
}

type Row = Record<string, unknown>;

const toView = (row: Row): IssuedCertificateView => ({
  serialNumber: row.serial_number as string,
  identity: row.identity as string,
  fingerprintSha256: row.fingerprint_sha256 as string,
  notBefore: (row.not_before as Date).toISOString(),
  notAfter: (row.not_after as Date).toISOString(),
  issuedAt: (row.issued_at as Date).toISOString(),
  revokedAt: row.revoked_at ? (row.revoked_at as Date).toISOString() : null,
  revocationReason: (row.revocation_reason as string | null) ?? null,
});

/**
 * Keyhold's own CA for service identities. Its private key is generated once and stored only sealed under
 * the master key; it is unsealed in memory for each issuance. Certificates are short-lived by default and
 * revocable: the service listener refuses a revoked one as soon as the revocation is announced.
 */
export class CertificateAuthorityService {
  private readonly logger = new Logger(CertificateAuthorityService.name);
  private certificatePem: string | null = null;

  constructor(
    private readonly dataSource: DataSource,
    private readonly masterKey: MasterKey,
    private readonly now: () => Date,
    /** Records the CA's creation (actor `system:bootstrap`); writes nothing with audit off. */
    private readonly audit: AuditScope,
  ) {}

  /** The CA's certificate when it exists; never creates it (Keyhold may be sealed). */
  async existing(): Promise<string | null> {
    if (this.certificatePem) return this.certificatePem;
    const rows: Row[] = await this.dataSource.query(`SELECT certificate_pem FROM keyhold_certificate_authority WHERE id = 1`);
    return (rows[0]?.certificate_pem as string | undefined) ?? null;
  }

  /**
   * Loads the CA, creating it on first use, in one transaction with its record (`ca.create`): a record that
   * cannot be written fails the creation. Returns its certificate (public).
   */
  async ensure(): Promise<string> {
    if (this.certificatePem) return this.certificatePem;
    const rows: Row[] = await this.dataSource.query(`SELECT certificate_pem FROM keyhold_certificate_authority WHERE id = 1`);
    if (rows[0]) {
      this.certificatePem = rows[0].certificate_pem as string;
      return this.certificatePem;
    }
    const ca = await createCertificateAuthority({ commonName: 'Keyhold service identity CA' });
    const { sealed, masterKeyVersion } = sealForStorage(this.masterKey, Buffer.from(ca.privateKeyPem, 'utf8'), SEAL_LABEL);
    // Several instances may get here at once: the one whose insert took records the creation, with it.
    const created = await this.dataSource.transaction(async (manager) => {
      const inserted: Row[] = await manager.query(
        `INSERT INTO keyhold_certificate_authority (id, certificate_pem, sealed_private_key, master_key_version, created_at)
         VALUES (1, $1, $2, $3, $4) ON CONFLICT (id) DO NOTHING RETURNING id`,
        [ca.certificatePem, sealed, masterKeyVersion, this.now()],
      );
      if (inserted.length > 0) {
        await this.audit.record(manager, { operation: SYSTEM_OPERATIONS.createCertificateAuthority, keyName: null, keyVersion: null });
      }
      return inserted.length > 0;
    });
    if (created) this.logger.log({ msg: 'created the service identity CA' });
    return this.ensure();
  }

  async issue(request: IssueRequest, alsoInTransaction?: (manager: EntityManager) => Promise<void>): Promise<{ certificatePem: string; privateKeyPem: string | null; caCertificatePem: string; certificate: IssuedCertificateView }> {
    const issuer = await this.unsealIssuer();
    const notBefore = new Date(this.now().getTime() - 60_000);
    const notAfter = new Date(notBefore.getTime() + 60_000 + request.validityHours * 3_600_000);
    const leaf = { issuer, commonName: request.identity.slice(0, 64), uris: [request.identity], usage: 'client' as const, notBefore, notAfter };
    let issued: { certificatePem: string; privateKeyPem: string | null };
    try {
      issued = request.requestPem
        ? { certificatePem: await issueCertificateForRequest({ ...leaf, requestPem: request.requestPem }), privateKeyPem: null }
        : await issueCertificate(leaf);
    } catch (error) {
      if (error instanceof CertificateRequestError) throw new ApiError('VALIDATION_FAILED', `csr: ${error.message}`);
      throw error;
    }
    const described = describeCertificate(issued.certificatePem);
    const rows: Row[] = await this.dataSource.transaction(async (manager) => {
      const inserted: Row[] = await manager.query(
        `INSERT INTO keyhold_service_certificates (serial_number, identity, fingerprint_sha256, certificate_pem, not_before, not_after, issued_by, issued_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
        [described.serialNumber, request.identity, described.fingerprintSha256, issued.certificatePem, described.notBefore, described.notAfter, request.issuedBy, this.now()],
      );
      await alsoInTransaction?.(manager);
      return inserted;
    });
    return { ...issued, caCertificatePem: issuer.certificatePem, certificate: toView(rows[0]) };
  }

  async list(identity?: string): Promise<IssuedCertificateView[]> {
    const rows: Row[] = identity
      ? await this.dataSource.query(`SELECT * FROM keyhold_service_certificates WHERE identity = $1 ORDER BY issued_at DESC`, [identity])
      : await this.dataSource.query(`SELECT * FROM keyhold_service_certificates ORDER BY issued_at DESC LIMIT 1000`);
    return rows.map(toView);
  }

  /** `alsoInTransaction` runs last in the revocation's transaction (its audit record). */
  async revoke(
    serialNumber: string,
    revokedBy: string | null,
    reason: string | null,
    alsoInTransaction?: (manager: EntityManager) => Promise<void>,
  ): Promise<IssuedCertificateView> {
    return this.dataSource.transaction(async (manager) => {
      const rows: Row[] = await manager.query(
        `UPDATE keyhold_service_certificates SET revoked_at = COALESCE(revoked_at, $2), revoked_by = COALESCE(revoked_by, $3),
                revocation_reason = COALESCE(revocation_reason, $4)
          WHERE serial_number = $1 RETURNING *`,
        [serialNumber, this.now(), revokedBy, reason],
      );
      const updated = (Array.isArray(rows[0]) ? rows[0] : rows) as Row[];
      if (!updated[0]) throw new ApiError('NOT_FOUND', 'no certificate with that serial number');
      await manager.query(`SELECT pg_notify($1, $2)`, [CERTIFICATE_REVOKED_CHANNEL, updated[0].fingerprint_sha256]);
      await alsoInTransaction?.(manager);
      return toView(updated[0]);
    });
  }

  /** Fingerprints of revoked certificates that have not expired yet (expired ones TLS refuses by itself). */
  async revokedFingerprints(): Promise<string[]> {
    const rows: Row[] = await this.dataSource.query(
      `SELECT fingerprint_sha256 FROM keyhold_service_certificates WHERE revoked_at IS NOT NULL AND not_after > $1`,
      [this.now()],
    );
    return rows.map((row) => row.fingerprint_sha256 as string);
  }

  private async unsealIssuer(): Promise<CertificateAndKey> {
    const certificatePem = await this.ensure();
    const rows: Row[] = await this.dataSource.query(`SELECT sealed_private_key, master_key_version FROM keyhold_certificate_authority WHERE id = 1`);
    await this.masterKey.ensureVersions?.([rows[0].master_key_version as number]);
    const privateKey = this.masterKey.open(rows[0].sealed_private_key as Buffer, rows[0].master_key_version as number, SEAL_LABEL);
    try {
      return { certificatePem, privateKeyPem: privateKey.toString('utf8') };
    } finally {
      privateKey.fill(0);
    }
  }
}
