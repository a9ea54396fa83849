import assert from 'node:assert/strict';
import type { Worker } from 'node:worker_threads';
import { after, before, describe, it } from 'node:test';
import type { DataSource } from 'typeorm';
import { type AuditEntry, type AuditRecord, verifyAuditChain } from '@keyhold/crypto-core';
import { auditRecordFromRow, auditRecordsQuery } from '@keyhold/contracts';
import { openDatabase } from '../../src/database/data-source';
import { AuditWriterThread } from '../../src/audit/audit-writer';
import { type TestDatabase, createTestDatabase } from '../support/test-database';

const entry = (requestId: string): AuditEntry => ({
  time: new Date().toISOString(),
  plane: 'service',
  actor: 'spiffe://test.keyhold/writer',
  operation: 'encrypt',
  keyName: 'k',
  keyVersion: 1,
  outcome: 'success',
  errorCode: null,
  requestId,
  sourceAddress: '127.0.0.1',
  contextHmac: null,
});

describe('audit writer thread: group commits off the request thread', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  const troubles: string[] = [];
  const heads: number[] = [];
  let writer: AuditWriterThread;

  before(async () => {
    database = await createTestDatabase();
    dataSource = await openDatabase(database.url);
    writer = new AuditWriterThread(
      { databaseUrl: database.url, groupCommit: { maxDelayMs: 0, maxBatch: 1000 } },
      { appended: (head) => heads.push(head), trouble: (message) => troubles.push(message) },
    );
  });

  after(async () => {
    await writer.close();
    await dataSource.destroy();
    await database.drop();
  });

  const chain = async () => {
    const query = auditRecordsQuery({}, 0, 10_000);
    const rows: Array<Record<string, unknown>> = await dataSource.query(query.text, query.values);
    return rows.map((row) => auditRecordFromRow(row) as AuditRecord);
  };

  it('gives each caller its own contiguous, committed sequences, in fewer commits than callers', async () => {
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => writer.append(i % 4 === 0 ? [entry(`a${i}`), entry(`b${i}`)] : [entry(`a${i}`)])));
    const all = results.flat();
    assert.equal(new Set(all).size, 250);
    for (const sequences of results) sequences.forEach((sequence, index) => assert.equal(sequence, sequences[0] + index));
    assert.ok(writer.batches < 200, `${writer.batches} commits for 200 callers`);
    const records = await chain();
    assert.equal(records.length, 250);
    const bySequence = new Map(records.map((record) => [record.sequence, record.requestId]));
    results.forEach((sequences, i) => assert.equal(bySequence.get(sequences[0]), `a${i}`, 'the sequence a caller got is its own record'));
    assert.equal(Math.max(...heads), 250);
    assert.ok(verifyAuditChain(records).ok);
  });

  it('fails what a dying writer thread had in flight, then carries on the same chain in a new thread', async () => {
    const doomed = Array.from({ length: 20 }, (_, i) => writer.append([entry(`doomed${i}`)]));
    // The thread dies the moment the batch is handed to it (as it would on a crash or an out-of-memory kill).
    setImmediate(() => void (writer as unknown as { worker: Worker }).worker.terminate());
    const outcomes = await Promise.allSettled(doomed);
    const failed = outcomes.filter((outcome) => outcome.status === 'rejected');
    assert.ok(failed.length > 0, 'some appends were in flight when the thread died');
    assert.ok(troubles.some((message) => message.includes('audit writer thread exited')), troubles.join('\n'));
    const committed = outcomes.flatMap((outcome) => (outcome.status === 'fulfilled' ? outcome.value : []));

    const [next] = await writer.append([entry('after')]);
    const records = await chain();
    assert.equal(next, records[records.length - 1].sequence);
    // A batch the thread committed just before it died is in the chain though its callers were told it failed
    // (their answers were 503s): a record too many is safe, a result without a record is not.
    assert.ok(records.length >= 250 + committed.length + 1 && records.length <= 250 + 20 + 1, `${records.length} records`);
    assert.ok(verifyAuditChain(records).ok);
  });

  it('commits everything appended before close, and refuses appends after it', async () => {
    const pending = Promise.all(Array.from({ length: 10 }, (_, i) => writer.append([entry(`last${i}`)])));
    await writer.close();
    assert.equal((await pending).length, 10);
    await assert.rejects(writer.append([entry('too late')]), /closed/);
    const records = await chain();
    assert.deepEqual(records.slice(-10).map((record) => record.requestId).sort(), Array.from({ length: 10 }, (_, i) => `last${i}`).sort());
  });
});
