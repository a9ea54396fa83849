import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DataSource } from 'typeorm';
import { type AuditEntry, verifyAuditChain } from '@keyhold/crypto-core';
import { auditRecordFromRow, auditRecordsQuery } from '@keyhold/contracts';
import { openDatabase } from '../../src/database/data-source';
import { AuditTrail, AuditUnavailableError } from '../../src/audit/audit-trail';
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

describe('audit group commit against Postgres: one statement per batch, each caller its own sequences', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  const heads: number[] = [];
  let writer: AuditTrail;

  before(async () => {
    database = await createTestDatabase();
    dataSource = await openDatabase(database.url);
    writer = new AuditTrail({ enabled: true, databaseUrl: database.url, groupCommit: { maxDelayMs: 0, maxBatch: 1000 } });
    writer.onAppended((head) => heads.push(head));
  });

  after(async () => {
    await writer.close();
    await dataSource.destroy();
    await database.drop();
  });

  const chain = async () => {
    const query = auditRecordsQuery({}, 0, 10_000);
    const rows: Array<Record<string, unknown>> = await dataSource.query(query.text, query.values);
    return rows.map(auditRecordFromRow);
  };

  it('gives each caller its own contiguous, committed sequences, in fewer commits than callers', async () => {
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => writer.append(i % 4 === 0 ? [entry(`a${i}`), entry(`b${i}`)] : [entry(`a${i}`)])));
    const all = results.flat();
    assert.equal(new Set(all).size, 250);
    for (const sequences of results) sequences.forEach((sequence, index) => assert.equal(sequence, sequences[0] + index));
    assert.ok(writer.batchesWritten < 200, `${writer.batchesWritten} commits for 200 callers`);
    const records = await chain();
    assert.equal(records.length, 250);
    const bySequence = new Map(records.map((record) => [record.sequence, record.requestId]));
    results.forEach((sequences, i) => assert.equal(bySequence.get(sequences[0]), `a${i}`, 'the sequence a caller got is its own record'));
    assert.equal(Math.max(...heads), 250);
    assert.ok(verifyAuditChain(records).ok);
  });

  it('fails only the callers of a batch Postgres refused, and carries on the same chain after it', async () => {
    await dataSource.query(`CREATE FUNCTION keyhold_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.request_id LIKE 'doomed%' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$`);
    await dataSource.query('CREATE TRIGGER keyhold_test_refuse BEFORE INSERT ON keyhold_audit_records FOR EACH ROW EXECUTE FUNCTION keyhold_test_refuse()');
    try {
      await writer.drain();
      // Queued in one turn: the good and the doomed go in the same batch, which fails whole.
      const together = await Promise.allSettled([writer.append([entry('fine0')]), writer.append([entry('doomed0')])]);
      assert.deepEqual(together.map((outcome) => outcome.status), ['rejected', 'rejected']);
      assert.ok(together.every((outcome) => outcome.status === 'rejected' && outcome.reason instanceof AuditUnavailableError));
      const [next] = await writer.append([entry('after')]);
      const records = await chain();
      assert.equal(records.length, 251, 'the refused batch left nothing behind');
      assert.equal(next, 251);
      assert.ok(verifyAuditChain(records).ok);
    } finally {
      await dataSource.query('DROP TRIGGER keyhold_test_refuse ON keyhold_audit_records');
      await dataSource.query('DROP FUNCTION keyhold_test_refuse()');
    }
  });

  it('commits everything appended before close; after it, appends fail closed', async () => {
    const pending = Promise.all(Array.from({ length: 10 }, (_, i) => writer.append([entry(`last${i}`)])));
    await writer.close();
    assert.equal((await pending).length, 10);
    await assert.rejects(writer.append([entry('too late')]), AuditUnavailableError);
    const records = await chain();
    assert.deepEqual(records.slice(-10).map((record) => record.requestId).sort(), Array.from({ length: 10 }, (_, i) => `last${i}`).sort());
  });
});
