import { type AuditRecordView, auditRecordPagesInRange } from '@keyhold/contracts';
import { type AuditChainPoint, verifyAuditChainInPages } from '@keyhold/crypto-core';

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
