import { auditRecordFromRow, auditRecordsQuery } from '@keyhold/contracts';
import { type AuditChainPoint, verifyAuditChain } from '@keyhold/crypto-core';

/** Records read per query while re-verifying the chain before a checkpoint. */
export const VERIFY_PAGE = 5000;

export type RowQuery = (text: string, values: unknown[]) => Promise<Array<Record<string, unknown>>>;

/**
 * Re-verifies the records after `from` (a signed checkpoint, or the genesis) up to `head`, page by page, each
 * page anchored on the last record of the one before; the reason it fails, or null. A chain rewritten after
 * `from` and re-hashed consistently verifies as a chain, but not through `witnessed`, the last record this
 * instance wrote (when there is one since `from`): the hash there commits to every record before it.
 */
export async function verifyChainSince(
  query: RowQuery,
  from: AuditChainPoint,
  head: AuditChainPoint,
  witnessed: AuditChainPoint | null,
): Promise<string | null> {
  let anchor = from;
  for (;;) {
    const page = auditRecordsQuery({ toSequence: head.sequence }, anchor.sequence, VERIFY_PAGE);
    const rows = await query(page.text, page.values);
    const records = rows.map(auditRecordFromRow);
    const last = rows.length < VERIFY_PAGE;
    const result = verifyAuditChain(records, { anchor, head: last ? head : undefined });
    if (!result.ok) return result.broken.message;
    const mine = witnessed ? records.find((record) => record.sequence === witnessed.sequence) : undefined;
    if (witnessed && mine && mine.hash !== witnessed.hash) {
      return `record #${witnessed.sequence} is not the one this instance wrote: the chain up to it was rewritten and re-hashed`;
    }
    if (last) return null;
    anchor = { sequence: result.lastSequence as number, hash: result.lastHash as string };
  }
}
