import { z } from 'zod';

/** The audit trail on the wire (admin API, JSON Lines exports, kmsctl): docs/audit.md. */
export const AUDIT_OUTCOMES = ['success', 'refused', 'error'] as const;
export type AuditOutcomeName = (typeof AUDIT_OUTCOMES)[number];

/** Filters shared by the query and the export; all optional, combined with AND. */
export const auditFilterSchema = z
  .object({
    from: z.iso.datetime({ offset: true }).optional(),
    to: z.iso.datetime({ offset: true }).optional(),
    actor: z.string().min(1).max(512).optional(),
    key: z.string().min(1).max(64).optional(),
    operation: z.string().min(1).max(64).regex(/^[a-z0-9.-]+$/, 'an operation name such as encrypt or keys.rotate').optional(),
    outcome: z.enum(AUDIT_OUTCOMES).optional(),
    /** Sequence range (inclusive): an unfiltered range is what `kmsctl audit verify` checks. */
    fromSequence: z.coerce.number().int().min(1).optional(),
    toSequence: z.coerce.number().int().min(1).optional(),
  })
  .strict();

export const auditQuerySchema = auditFilterSchema
  .extend({
    limit: z.coerce.number().int().min(1).max(1000).optional(),
    cursor: z.string().regex(/^[0-9]{1,18}$/, 'not a cursor this server returned').optional(),
  })
  .strict();
export type AuditQuery = z.output<typeof auditQuerySchema>;
export type AuditFilter = z.output<typeof auditFilterSchema>;

export interface AuditRecordView {
  sequence: number;
  time: string;
  plane: 'service' | 'admin' | 'system';
  actor: string | null;
  operation: string;
  keyName: string | null;
  keyVersion: number | null;
  outcome: AuditOutcomeName;
  errorCode: string | null;
  requestId: string | null;
  sourceAddress: string | null;
  contextHmac: string | null;
  prevHash: string;
  hash: string;
}

export interface AuditCheckpointView {
  sequence: number;
  headHash: string;
  time: string;
  keyFingerprint: string;
  signature: string;
}

/**
 * The latest prune: Keyhold removed the records through `throughSequence` (and the checkpoints before it), and
 * signed this with the checkpoint key under its own domain. The first record kept links to `anchorHash`.
 */
export interface AuditPruneView {
  throughSequence: number;
  anchorHash: string;
  time: string;
  keyFingerprint: string;
  signature: string;
}

/** `GET /api/v1/audit/retention`: where the chain starts, and the checkpoints a prune may go through now. */
export interface AuditRetentionView {
  /** KEYHOLD_AUDIT_MIN_RETENTION_DAYS: records younger than this are never pruned. */
  minRetentionDays: number;
  /** Now less the minimum retention: a checkpoint signed before it may be pruned through. */
  cutoff: string;
  /** The latest prune (null: the chain still starts at record 1). */
  prune: AuditPruneView | null;
  /** The first record kept (null: none). */
  firstSequence: number | null;
  /** The latest checkpoints signed before the cutoff and after the latest prune, newest first (at most 20). */
  candidates: AuditCheckpointView[];
  /** The most records one prune removes: prune a larger backlog through successive checkpoints. */
  maxRecordsPerPrune: number;
  /** The standing retention: records older than this many days are pruned by Keyhold itself (null: only by request). */
  policyDays: number | null;
  /** Whether every prune first archives what it removes in the server's KEYHOLD_AUDIT_ARCHIVE_DIR (false: archive first yourself). */
  archiving: boolean;
}

/** `POST /api/v1/audit/prune`: opens a sensitive operation that removes the records through a signed checkpoint. */
export const auditPruneRequestSchema = z.object({ throughSequence: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER) }).strict();
export type AuditPruneRequest = z.output<typeof auditPruneRequestSchema>;

/** `POST /api/v1/audit/retention-policy`: opens a sensitive operation that sets (or, with null, ends) the standing retention. */
export const auditRetentionPolicyRequestSchema = z.object({ days: z.number().int().min(1).max(36_500).nullable() }).strict();
export type AuditRetentionPolicyRequest = z.output<typeof auditRetentionPolicyRequestSchema>;

/**
 * Whether this instance's checkpointer signs. Before signing, it re-verifies the chain from the latest signed
 * checkpoint to the head it is about to sign; when that fails it refuses, and says so here until a later
 * checkpoint is signed.
 */
export interface AuditCheckpointSigningView {
  status: 'ok' | 'refused';
  /** The latest refusal; null when the last attempt signed (or there was none). */
  refusal: { at: string; headSequence: number; sinceSequence: number; reason: string } | null;
}

/** `GET /api/v1/audit/checkpoints?limit=`: the latest `limit` checkpoints (default 100); exports carry the rest. */
export const auditCheckpointsQuerySchema = z.object({ limit: z.coerce.number().int().min(1).max(1000).optional() }).strict();
export type AuditCheckpointsQuery = z.output<typeof auditCheckpointsQuerySchema>;
export const DEFAULT_CHECKPOINTS_LISTED = 100;

/** `GET /api/v1/audit/checkpoints`: the latest checkpoints, oldest first. */
export interface AuditCheckpointsView {
  checkpoints: AuditCheckpointView[];
  head: { sequence: number; hash: string };
  signing: AuditCheckpointSigningView;
  /** The latest prune (null: the chain still starts at record 1). */
  prune: AuditPruneView | null;
}

export interface AuditPageView {
  records: AuditRecordView[];
  /** Pass as `cursor` for the next page; null on the last one. */
  nextCursor: string | null;
}

export interface AuditPublicKeyView {
  publicKeyPem: string;
  fingerprint: string;
}

/**
 * One line of a JSON Lines export: a header first, then (when the records start right after the latest prune)
 * that prune, then records in sequence order, then checkpoints.
 */
export type AuditExportLine =
  | { type: 'header'; format: 'keyhold-audit-export-v1'; exportedAt: string; filters: AuditFilter; keyFingerprint: string | null }
  | ({ type: 'prune' } & AuditPruneView)
  | ({ type: 'record' } & AuditRecordView)
  | ({ type: 'checkpoint' } & AuditCheckpointView);

/** Response header with the sequence of a service-plane request's record (`first-last` for a batch). */
export const AUDIT_SEQUENCE_HEADER = 'keyhold-audit-sequence';
