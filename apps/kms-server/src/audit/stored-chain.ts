import { type AuditRecordView, auditRecordFromRow, auditRecordsQuery } from '@keyhold/contracts';
import { type AuditChainPoint, verifyAuditChain } from '@keyhold/crypto-core';

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
 * `to` exactly. Returns why it fails, or null. `checkPage` may add a check of its own on each page.
 */
export async function verifyStoredChain(
  query: Query,
  from: AuditChainPoint,
  to: AuditChainPoint,
  pageSize: number,
  checkPage: (records: readonly AuditRecordView[]) => string | null = () => null,
): Promise<string | null> {
  let anchor = from;
  for (;;) {
    const page = auditRecordsQuery({ toSequence: to.sequence }, anchor.sequence, pageSize);
    const records = (await query(page.text, page.values)).map(auditRecordFromRow);
    const last = records.length < pageSize;
    const result = verifyAuditChain(records, { anchor, head: last ? to : undefined });
    if (!result.ok) return result.broken.message;
    const refusal = checkPage(records);
    if (refusal) return refusal;
    if (last) return null;
    anchor = { sequence: result.lastSequence as number, hash: result.lastHash as string };
  }
}
