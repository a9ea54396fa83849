import type { AuditCheckpointView, AuditFilter, AuditPruneView, AuditRecordView } from './audit';

// How the audit tables are read, for both of their readers: the admin API (kms-server) and `kmsctl`, which
// reads them directly with a read-only role. Plain SQL text and row mapping: no driver here.

type Row = Record<string, unknown>;

/**
 * Records matching `filter` after `afterSequence`, in sequence order, at most `limit` (all without one: for a
 * cursor): a parameterised query.
 */
export function auditRecordsQuery(filter: AuditFilter, afterSequence: number, limit?: number): { text: string; values: unknown[] } {
  const where: string[] = ['sequence > $1'];
  const values: unknown[] = [afterSequence];
  const add = (clause: string, value: unknown) => {
    values.push(value);
    where.push(clause.replace('?', `$${values.length}`));
  };
  if (filter.from) add('time >= ?', filter.from);
  if (filter.to) add('time < ?', filter.to);
  if (filter.actor) add('actor = ?', filter.actor);
  if (filter.key) add('key_name = ?', filter.key);
  if (filter.operation) add('operation = ?', filter.operation);
  if (filter.outcome) add('outcome = ?', filter.outcome);
  if (filter.fromSequence) add('sequence >= ?', filter.fromSequence);
  if (filter.toSequence) add('sequence <= ?', filter.toSequence);
  const text = `SELECT * FROM keyhold_audit_records WHERE ${where.join(' AND ')} ORDER BY sequence`;
  if (limit === undefined) return { text, values };
  values.push(limit);
  return { text: `${text} LIMIT $${values.length}`, values };
}

/** Cursors declared by this process, for their names. */
let cursorsOpened = 0;

/**
 * Every record matching `filter`, in sequence order, read page by page through a cursor: one query and one scan,
 * however long the range (what exports read). Paging by `sequence > last ORDER BY sequence LIMIT n` instead starts a
 * query per page, and where the planner expects few rows (a table whose statistics lag its growth, a time range on
 * the BRIN index) each of them reads the rest of the range and sorts it: a long export then costs the square of its
 * length. A cursor lives in a transaction: call it within one (the exports' snapshot).
 */
export async function* auditRecordPagesByCursor(
  query: (sql: string, values?: unknown[]) => Promise<Row[]>,
  filter: AuditFilter,
  pageSize: number,
): AsyncGenerator<AuditRecordView[]> {
  const records = auditRecordsQuery(filter, 0);
  // A name of its own, so that two reads in one transaction never meet.
  const cursor = `keyhold_audit_records_${(cursorsOpened += 1)}`;
  await query(`DECLARE ${cursor} NO SCROLL CURSOR FOR ${records.text}`, records.values);
  try {
    for (;;) {
      const rows = await query(`FETCH FORWARD ${Math.trunc(pageSize)} FROM ${cursor}`);
      if (rows.length === 0) return;
      yield rows.map(auditRecordFromRow);
    }
  } finally {
    // In a transaction that failed meanwhile, the cursor is gone with it: nothing to close.
    await query(`CLOSE ${cursor}`).catch(() => undefined);
  }
}

/** A record's `time` as the chain encodes it (ISO 8601 UTC with milliseconds), in SQL. */
export const AUDIT_TIME_AS_CHAIN_TEXT = `to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * The stored records with a sequence in ($1, $2], in order; the time as the chain encodes it, formatted by Postgres:
 * the driver's parse into a Date, and back, cost the serving thread 2 µs of the 9-11 that re-verifying a record takes
 * there.
 */
const AUDIT_RECORDS_IN_RANGE = `SELECT sequence, ${AUDIT_TIME_AS_CHAIN_TEXT} AS time, plane, actor,
    operation, key_name, key_version, outcome, error_code, request_id, source_address, context_hmac, prev_hash, hash
  FROM keyhold_audit_records WHERE sequence > $1 AND sequence <= $2 ORDER BY sequence`;
/** The first stored record in ($1, $2] (null: none); an index lookup, whatever the gap before it. */
const AUDIT_NEXT_SEQUENCE = `SELECT min(sequence)::text AS sequence FROM keyhold_audit_records WHERE sequence > $1 AND sequence <= $2`;

/**
 * The stored records after `afterSequence` up to `throughSequence`, in order, a page at a time: the walk along
 * the chain that verification takes (before a checkpoint or a prune, and `kmsctl audit verify`). Each page is a
 * bounded stretch of sequences (`pageSize` of them), not `ORDER BY sequence LIMIT n` over the rest of the range:
 * with the table's statistics behind its growth (a young table, or appends faster than autoanalyze), the planner
 * expects a handful of rows there and reads ALL of them, bitmap scan and sort, for every page: a walk of 20 000
 * records in pages of 200 cost 15-18 µs of Postgres CPU per record instead of 2, the more so the longer the walk
 * (measured 2026-11-27). Sequences have no gaps unless records were deleted; a stretch that holds none is skipped in one
 * lookup, so deleted records cost nothing to walk over. Pages are never empty.
 */
export async function* auditRecordPagesInRange(
  query: (sql: string, values: unknown[]) => Promise<Row[]>,
  afterSequence: number,
  throughSequence: number,
  pageSize: number,
): AsyncGenerator<AuditRecordView[]> {
  let after = afterSequence;
  while (after < throughSequence) {
    const end = Math.min(after + pageSize, throughSequence);
    const rows = await query(AUDIT_RECORDS_IN_RANGE, [after, end]);
    if (rows.length > 0) {
      yield rows.map(auditRecordFromRow);
      after = end;
      continue;
    }
    const [next] = await query(AUDIT_NEXT_SEQUENCE, [end, throughSequence]);
    if (next?.sequence === null || next?.sequence === undefined) return;
    after = Number(next.sequence) - 1;
  }
}

/** Checkpoints with a sequence in [$1, $2], in order. */
export const AUDIT_CHECKPOINTS_IN_RANGE = `SELECT * FROM keyhold_audit_checkpoints WHERE sequence BETWEEN $1 AND $2 ORDER BY sequence`;
/**
 * The sequence range of the checkpoints an export carries, given the first and last record it holds (null:
 * none). Those within the records' range; and when the range runs to the chain head (no `to`, no `toSequence`)
 * every later one too, so that a tail deleted from the database (and the head rewound) shows as a signed
 * checkpoint with no record. A `toSequence` past the last record reaches up to it for the same reason.
 * Filtered exports (actor, key, operation, outcome) keep the records' own range: they are for reading.
 */
export function auditExportCheckpointRange(filter: AuditFilter, first: number | null, last: number | null): [number, number] | null {
  const filtered = filter.actor !== undefined || filter.key !== undefined || filter.operation !== undefined || filter.outcome !== undefined;
  if (filtered) return first === null || last === null ? null : [first, last];
  const from = first ?? (filter.from === undefined ? (filter.fromSequence ?? 1) : null);
  if (from === null) return null;
  if (filter.to !== undefined) return last === null ? null : [from, last];
  if (filter.toSequence !== undefined) return [from, Math.max(filter.toSequence, last ?? 0)];
  return [from, Number.MAX_SAFE_INTEGER];
}

/** The latest prune, if any (docs/audit.md, retention). */
export const AUDIT_LATEST_PRUNE = `SELECT * FROM keyhold_audit_prunes ORDER BY through_sequence DESC LIMIT 1`;

export function auditPruneFromRow(row: Row): AuditPruneView {
  return {
    throughSequence: Number(row.through_sequence),
    anchorHash: row.anchor_hash as string,
    time: (row.time as Date).toISOString(),
    keyFingerprint: row.key_fingerprint as string,
    signature: row.signature as string,
  };
}

/** The chain head (sequence as text: a bigint). */
export const AUDIT_CHAIN_HEAD = `SELECT sequence::text AS sequence, hash FROM keyhold_audit_chain_head WHERE id = 1`;

export function auditRecordFromRow(row: Row): AuditRecordView {
  return {
    sequence: Number(row.sequence),
    time: typeof row.time === 'string' ? row.time : (row.time as Date).toISOString(),
    plane: row.plane as AuditRecordView['plane'],
    actor: (row.actor as string | null) ?? null,
    operation: row.operation as string,
    keyName: (row.key_name as string | null) ?? null,
    keyVersion: row.key_version === null || row.key_version === undefined ? null : Number(row.key_version),
    outcome: row.outcome as AuditRecordView['outcome'],
    errorCode: (row.error_code as string | null) ?? null,
    requestId: (row.request_id as string | null) ?? null,
    sourceAddress: (row.source_address as string | null) ?? null,
    contextHmac: (row.context_hmac as string | null) ?? null,
    prevHash: row.prev_hash as string,
    hash: row.hash as string,
  };
}

export function auditCheckpointFromRow(row: Row): AuditCheckpointView {
  return {
    sequence: Number(row.sequence),
    headHash: row.head_hash as string,
    time: (row.time as Date).toISOString(),
    keyFingerprint: row.key_fingerprint as string,
    signature: row.signature as string,
  };
}
