import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CertificateAuthorityService } from './certificate-authority.service';
import { DatabaseGrantPolicySource } from './database-grant-policy-source';
import type { GrantsRepository, StoredGrant } from './grants.repository';
import { RevocationList } from './revocation-list';

/** A read whose answer the test gives, when it chooses: the interleavings below are the point. */
function heldReads<T>() {
  const pending: Array<(value: T) => void> = [];
  return {
    read: () => new Promise<T>((resolve) => pending.push(resolve)),
    answer: (value: T) => pending.shift()?.(value),
    get waiting() {
      return pending.length;
    },
  };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

const at = new Date().toISOString();
const grant = (id: string): StoredGrant => ({ id, identity: `spiffe://test/${id}`, keys: '*', operations: ['encrypt'], createdAt: at, updatedAt: at });

describe('grants and revocations in memory, against reads that overlap changes', () => {
  it('a reload asked for while an older read is in flight waits for a read that began after it', async () => {
    const reads = heldReads<StoredGrant[]>();
    const source = new DatabaseGrantPolicySource([], { list: reads.read } as unknown as GrantsRepository);
    const older = source.reload(); // began before the caller's change
    const mine = source.reload(); // the caller just deleted the grant and asks for the grants in force
    let mineDone = false;
    void mine.then(() => (mineDone = true));
    reads.answer([grant('deleted')]); // the older read still saw it
    await older;
    await settle();
    assert.equal(mineDone, false, 'the caller does not return on the older read');
    assert.equal(reads.waiting, 1, 'one more read began after it');
    reads.answer([]);
    await mine;
    assert.equal(source.current().isAllowed('spiffe://test/deleted', 'encrypt', 'k'), false);
  });

  it('bursts still coalesce: one read in flight and one queued, whatever the number of callers', async () => {
    const reads = heldReads<StoredGrant[]>();
    const source = new DatabaseGrantPolicySource([], { list: reads.read } as unknown as GrantsRepository);
    const all = Array.from({ length: 10 }, () => source.reload());
    await settle();
    assert.equal(reads.waiting, 1);
    reads.answer([]);
    await settle();
    assert.equal(reads.waiting, 1, 'the nine later callers share one queued read');
    reads.answer([grant('new')]);
    await Promise.all(all);
    assert.equal(source.current().isAllowed('spiffe://test/new', 'encrypt', 'k'), true);
  });

  it('a revocation announced while a reload is reading is kept', async () => {
    const reads = heldReads<string[]>();
    const list = new RevocationList({ revokedFingerprints: reads.read } as unknown as CertificateAuthorityService);
    const reloading = list.reload();
    list.add('announced-meanwhile');
    reads.answer(['stored-before']);
    await reloading;
    assert.equal(list.isRevoked('announced-meanwhile'), true);
    assert.equal(list.isRevoked('stored-before'), true);
  });
});
