import { AUDIT_TIME_AS_CHAIN_TEXT, type AuditRecordView, auditRecordPagesInRange } from '@keyhold/contracts';
import { AUDIT_RECORD_DOMAIN, type AuditChainPoint, verifyAuditChainInPages } from '@keyhold/crypto-core';

/**
 * Records read per query while re-verifying stored records (before a checkpoint, before a prune). It runs on the
 * thread that serves requests (a worker thread would carry a heap of its own, tens of megabytes), so pages stay
 * small. Pages of 1000 showed as a doubled p99 at concurrency 64 (docs/benchmarks.md), and, held across a slow
 * round trip, as garbage promoted to the old generation (resident memory).
 */
export const CHAIN_VERIFY_PAGE = 200;

type Query = (sql: string, parameters?: unknown[]) => Promise<Array<Record<string, unknown>>>;

/**
 * Re-verifies the stored records after `from` (a signed point: a checkpoint, a prune, or the genesis) up to and
 * including `to`, page by page, each page anchored on the last record of the one before; the chain must end at
 * `to` exactly. Returns why it fails, or null. `checkPage` may add a check of its own on each verified page (or
 * do something with it, such as archive it).
 */
export async function verifyStoredChain(
  query: Query,
  from: AuditChainPoint,
  to: AuditChainPoint,
  pageSize: number,
  checkPage: (records: readonly AuditRecordView[]) => string | null | Promise<string | null> = () => null,
): Promise<string | null> {
  let refusal: string | null = null;
  const stop = new Error('refused by checkPage');
  try {
    const result = await verifyAuditChainInPages(auditRecordPagesInRange(query, from.sequence, to.sequence, pageSize), {
      anchor: from,
      head: to,
      onPage: async (records) => {
        refusal = await checkPage(records as readonly AuditRecordView[]);
        if (refusal) throw stop;
      },
    });
    return result.ok ? null : result.broken.message;
  } catch (error) {
    if (error === stop) return refusal;
    throw error;
  }
}

/**
 * Sequences re-hashed per statement by `chainVerifiesInDatabase`: a checkpoint's worth by default, in one statement
 * of some tens of milliseconds of Postgres's CPU.
 */
const CHAIN_CHECK_STRETCH = 10_000;

/**
 * One record's canonical encoding (crypto-core's `canonicalRecordText`: a JSON array of scalars with no whitespace)
 * written in SQL. `to_json(text)` escapes exactly the characters JSON.stringify escapes (quote, backslash, the
 * control characters, with the same short forms and lower-case \u00XX); an e2e test compares the two on hostile
 * strings.
 */
const CANONICAL_RECORD_SQL = `'[' || to_json($5::text)::text || ',' || sequence::text
    || ',' || to_json(${AUDIT_TIME_AS_CHAIN_TEXT})::text || ',' || to_json(plane)::text
    || ',' || coalesce(to_json(actor)::text, 'null') || ',' || to_json(operation)::text
    || ',' || coalesce(to_json(key_name)::text, 'null') || ',' || coalesce(key_version::text, 'null')
    || ',' || to_json(outcome)::text || ',' || coalesce(to_json(error_code)::text, 'null')
    || ',' || coalesce(to_json(request_id)::text, 'null') || ',' || coalesce(to_json(source_address)::text, 'null')
    || ',' || coalesce(to_json(context_hmac)::text, 'null') || ']'`;

/**
 * The stretch of sequences ($1, $2], re-hashed by Postgres: how many records it holds, the first that does not
 * match its hash, link to the one before it (the first one to $3), or follow it by one; and the hashes stored at
 * $2 (the stretch's end) and $4 (a record whose hash is known from elsewhere; 0: none).
 */
const AUDIT_STRETCH_CHECK = `WITH stretch AS (
    SELECT sequence, prev_hash, hash, lag(hash) OVER chain AS before_hash, lag(sequence) OVER chain AS before_sequence,
      encode(sha256(decode(prev_hash, 'hex') || convert_to(${CANONICAL_RECORD_SQL}, 'UTF8')), 'hex') AS computed
    FROM keyhold_audit_records WHERE sequence > $1 AND sequence <= $2
    WINDOW chain AS (ORDER BY sequence))
  SELECT count(*)::int AS records,
    min(sequence) FILTER (WHERE computed <> hash OR prev_hash <> coalesce(before_hash, $3)
      OR sequence <> coalesce(before_sequence, $1) + 1)::text AS first_broken,
    min(hash) FILTER (WHERE sequence = $2) AS end_hash,
    min(hash) FILTER (WHERE sequence = $4) AS known_hash
  FROM stretch`;

/**
 * The same question as `verifyStoredChain` (do the stored records after `from` chain up to `to` exactly, passing
 * through `witnessed` when it lies between?), answered by Postgres re-hashing its own rows: no record crosses the
 * connection, and the serving thread spends nothing per record (it spent about 9 µs re-reading and re-hashing each,
 * docs/audit.md). True only when the chain verifies. False says nothing about why; and an error of the check itself
 * (a hash that is not hex, say) is also false: ask `verifyStoredChain`, which names the first broken link and
 * remains the judge. Only a false alarm can come of a difference between the two encodings, never a pass.
 */
export async function chainVerifiesInDatabase(
  query: Query,
  from: AuditChainPoint,
  to: AuditChainPoint,
  witnessed: AuditChainPoint | null,
  stretchSize = CHAIN_CHECK_STRETCH,
): Promise<boolean> {
  let anchor = from;
  try {
    while (anchor.sequence < to.sequence) {
      const end = Math.min(anchor.sequence + stretchSize, to.sequence);
      const known = witnessed && witnessed.sequence > anchor.sequence && witnessed.sequence <= end ? witnessed : null;
      const [row] = await query(AUDIT_STRETCH_CHECK, [anchor.sequence, end, anchor.hash, known?.sequence ?? 0, AUDIT_RECORD_DOMAIN]);
      if (!row || row.records !== end - anchor.sequence || row.first_broken !== null || typeof row.end_hash !== 'string') return false;
      if (known && row.known_hash !== known.hash) return false;
      anchor = { sequence: end, hash: row.end_hash };
    }
  } catch {
    return false;
  }
  return anchor.sequence === to.sequence && anchor.hash === to.hash;
}
