import { hash as digestOnce } from 'node:crypto';

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
 * absent values are null. An array of scalars has exactly one JSON.stringify form, in any language. The
 * checkpointer's database-side check writes the same encoding in SQL (kms-server, audit/stored-chain.ts): change
 * both together; an e2e test (audit-trail) holds them to the same hashes.
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

const HEX_HASH = /^[0-9a-f]{64}$/;

/** hash = SHA-256(prevHash as 32 raw bytes ‖ canonical encoding), in hex. */
export function chainHash(prevHash: string, record: Omit<AuditRecord, 'prevHash' | 'hash'>): string {
  if (!HEX_HASH.test(prevHash)) throw new Error('prevHash must be 64 lower-case hex digits');
  return chainDigest(Buffer.from(prevHash, 'hex'), canonicalRecordText(record)).toString('hex');
}

/**
 * SHA-256(prev ‖ text) in one call: this runs once per record on the hot path's group commit, where a Hash
 * object per record (and its streaming machinery) cost more than the digest itself.
 */
function chainDigest(prev: Buffer, text: string): Buffer {
  const input = Buffer.allocUnsafe(32 + Buffer.byteLength(text, 'utf8'));
  prev.copy(input, 0, 0, 32);
  input.write(text, 32, 'utf8');
  return digestOnce('sha256', input, 'buffer');
}

/** Places entries in the chain after (headSequence, headHash): numbers them and links each to the one before. */
export function chainRecords(headSequence: number, headHash: string, entries: readonly AuditEntry[]): AuditRecord[] {
  return chainEntries(headSequence, headHash, entries, null);
}

/**
 * `chainRecords`, and the records as one JSON array of rows, each row the record's canonical encoding with its
 * `prevHash` and `hash` appended: `[domain, sequence, time, ..., contextHmac, prevHash, hash]`. What a batch of
 * records is stored from (kms-server, audit/chain-appender.ts): the texts hashed are reused, so a record is
 * encoded once, and rows without field names are smaller for the database to parse.
 */
export function chainRecordsAsRows(headSequence: number, headHash: string, entries: readonly AuditEntry[]): { records: AuditRecord[]; rows: string } {
  const rows = new Array<string>(entries.length);
  const records = chainEntries(headSequence, headHash, entries, rows);
  return { records, rows: `[${rows.join(',')}]` };
}

function chainEntries(headSequence: number, headHash: string, entries: readonly AuditEntry[], rows: string[] | null): AuditRecord[] {
  if (!HEX_HASH.test(headHash)) throw new Error('the head hash must be 64 lower-case hex digits');
  const records = new Array<AuditRecord>(entries.length);
  let prevHash = headHash;
  let prev: Buffer = Buffer.from(headHash, 'hex');
  for (let index = 0; index < entries.length; index += 1) {
    const entry = entries[index];
    // Field by field rather than spread: one object shape for every record, and one object per record.
    const record: AuditRecord = {
      sequence: headSequence + index + 1,
      time: entry.time,
      plane: entry.plane,
      actor: entry.actor,
      operation: entry.operation,
      keyName: entry.keyName,
      keyVersion: entry.keyVersion,
      outcome: entry.outcome,
      errorCode: entry.errorCode,
      requestId: entry.requestId,
      sourceAddress: entry.sourceAddress,
      contextHmac: entry.contextHmac,
      prevHash,
      hash: '',
    };
    const text = canonicalRecordText(record);
    prev = chainDigest(prev, text);
    record.hash = prev.toString('hex');
    // The hashes are hex: nothing in them to escape.
    if (rows) rows[index] = `${text.slice(0, -1)},"${prevHash}","${record.hash}"]`;
    prevHash = record.hash;
    records[index] = record;
  }
  return records;
}
