import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { auditExportCheckpointRange } from './audit-table';

describe('auditExportCheckpointRange: the checkpoints an export carries', () => {
  const ALL = Number.MAX_SAFE_INTEGER;

  it('an export to the chain head carries every checkpoint from its first record on (a deleted tail shows)', () => {
    assert.deepEqual(auditExportCheckpointRange({}, 1, 50), [1, ALL]);
    assert.deepEqual(auditExportCheckpointRange({ from: '2026-01-01T00:00:00Z' }, 20, 50), [20, ALL]);
    assert.deepEqual(auditExportCheckpointRange({ fromSequence: 10 }, 10, 50), [10, ALL]);
    // No record at all: from the start of the sequence range, so that a checkpoint still shows what is missing.
    assert.deepEqual(auditExportCheckpointRange({}, null, null), [1, ALL]);
    assert.deepEqual(auditExportCheckpointRange({ fromSequence: 7 }, null, null), [7, ALL]);
    assert.equal(auditExportCheckpointRange({ from: '2026-01-01T00:00:00Z' }, null, null), null);
  });

  it('a bounded export keeps to its records, a sequence bound past them reaches that bound', () => {
    assert.deepEqual(auditExportCheckpointRange({ to: '2026-02-01T00:00:00Z' }, 1, 50), [1, 50]);
    assert.equal(auditExportCheckpointRange({ to: '2026-02-01T00:00:00Z' }, null, null), null);
    assert.deepEqual(auditExportCheckpointRange({ toSequence: 40 }, 1, 40), [1, 40]);
    assert.deepEqual(auditExportCheckpointRange({ toSequence: 90 }, 1, 50), [1, 90]);
  });

  it('a filtered export (for reading) keeps its records\' own range', () => {
    assert.deepEqual(auditExportCheckpointRange({ key: 'k' }, 3, 30), [3, 30]);
    assert.equal(auditExportCheckpointRange({ operation: 'encrypt' }, null, null), null);
  });
});
