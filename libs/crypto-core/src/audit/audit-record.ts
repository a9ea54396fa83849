import { createHash } from 'node:crypto';

/**
 * One audit record as it is chained, stored and exported. Every field is part of the hash; none may hold
 * plaintext, key material, tokens or codes (the encryption context appears only as an HMAC).
 */
export interface AuditRecord {
  /** Position in the one chain of this database: 1, 2, 3, ... with no gaps. */
  sequence: number;
  /** When the operation was answered: ISO 8601 UTC with milliseconds (`2026-01-01T00:00:00.000Z`). */
  time: string;
  plane: AuditPlane;
  /** A service identity (certificate URI/DNS/CN), `admin:<uuid>`, `system:<job>`, or null when unknown. */
  actor: string | null;
  /** A stable operation name, e.g. `encrypt`, `keys.rotate`, `admin.sign-in`. */
  operation: string;
  keyName: string | null;
  keyVersion: number | null;
  outcome: AuditOutcome;
  /** The contract's error code for a refusal or failure; null on success. */
  errorCode: string | null;
  requestId: string | null;
  sourceAddress: string | null;
  /** HMAC-SHA256 (hex) of the canonical encryption context under the audit HMAC key; null without a context. */
  contextHmac: string | null;
  /** SHA-256 (hex) of the previous record (64 zeros before the first one). */
  prevHash: string;
  /** SHA-256 (hex) over `prevHash` and the canonical encoding of this record. */
  hash: string;
}

export type AuditPlane = 'service' | 'admin' | 'system';
/** `success` (2xx), `refused` (4xx: the caller's request was not done), `error` (5xx: Keyhold could not do it). */
export type AuditOutcome = 'success' | 'refused' | 'error';

/** A record before it is placed in the chain. */
export type AuditEntry = Omit<AuditRecord, 'sequence' | 'prevHash' | 'hash'>;

export const AUDIT_RECORD_DOMAIN = 'keyhold.audit.record.v1';
export const GENESIS_HASH = '0'.repeat(64);

/**
 * The canonical encoding of a record (docs/audit.md): the UTF-8 bytes of a JSON array, no whitespace, in this
 * fixed order: [domain, sequence, time, plane, actor, operation, keyName, keyVersion, outcome, errorCode,
 * requestId, sourceAddress, contextHmac]. Strings are JSON strings (non-ASCII as is), numbers are integers,
 * absent values are null. An array of scalars has exactly one JSON.stringify form, in any language.
 */
export function canonicalRecordBytes(record: Omit<AuditRecord, 'prevHash' | 'hash'>): Buffer {
  return Buffer.from(canonicalRecordText(record), 'utf8');
}

function canonicalRecordText(record: Omit<AuditRecord, 'prevHash' | 'hash'>): string {
  return JSON.stringify([
    AUDIT_RECORD_DOMAIN,
    record.sequence,
    record.time,
    record.plane,
    record.actor,
    record.operation,
    record.keyName,
    record.keyVersion,
    record.outcome,
    record.errorCode,
    record.requestId,
    record.sourceAddress,
    record.contextHmac,
  ]);
}

/** hash = SHA-256(prevHash as 32 raw bytes ‖ canonical encoding), in hex. */
export function chainHash(prevHash: string, record: Omit<AuditRecord, 'prevHash' | 'hash'>): string {
  if (!/^[0-9a-f]{64}$/.test(prevHash)) throw new Error('prevHash must be 64 lower-case hex digits');
  // Fed in two parts rather than concatenated: this runs once per record on the hot path's group commit.
  return createHash('sha256').update(Buffer.from(prevHash, 'hex')).update(canonicalRecordText(record), 'utf8').digest('hex');
}

/** Places entries in the chain after (headSequence, headHash): numbers them and links each to the one before. */
export function chainRecords(headSequence: number, headHash: string, entries: readonly AuditEntry[]): AuditRecord[] {
  const records: AuditRecord[] = [];
  let prevHash = headHash;
  let sequence = headSequence;
  for (const entry of entries) {
    sequence += 1;
    const unhashed = { ...entry, sequence };
    const hash = chainHash(prevHash, unhashed);
    records.push({ ...unhashed, prevHash, hash });
    prevHash = hash;
  }
  return records;
}
