import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DataSource } from 'typeorm';
import { type AuditFilter, auditRecordsQuery } from '@keyhold/contracts';
import { openDatabase } from '../../src/database/data-source';
import { type TestDatabase, createTestDatabase } from '../support/test-database';

const RECORDS = 60_000;
const COMMON_KEY = 'payments';
const RARE_KEY = 'ledger-export';
/** On every 20th record: too common for the bloom filters to skip a range, too rare to be most of a page. */
const TWENTIETH_KEY = 'refunds';
const COMMON_ACTOR = 'spiffe://example/service/checkout';
const RARE_ACTOR = 'spiffe://example/service/nightly-report';
/** Where the rare key and the rare actor appear: a few records each, in the middle of the trail. */
const RARE_KEY_SEQUENCES = [30_001, 30_002, 30_003, 30_500, 30_999];
const RARE_ACTOR_SEQUENCES = [41_001, 41_002, 41_003];

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  Plans?: PlanNode[];
}

function indexesUsed(node: PlanNode): string[] {
  return [...(node['Index Name'] ? [node['Index Name']] : []), ...(node.Plans ?? []).flatMap(indexesUsed)];
}

/**
 * The admin API's audit query by key or by actor (GET /api/v1/audit/records?key=… or ?actor=…), on a trail of
 * 60 000 records: answered through the BRIN bloom index on key and actor, reading a small part of the table, not
 * all of it. (The group commit no longer maintains a B-tree per filter for every record; docs/audit.md.)
 */
describe('audit query plans: key and actor filters use the bloom index', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  let tablePages: number;

  before(async () => {
    database = await createTestDatabase();
    dataSource = await openDatabase(database.url);
    // Rows as the group commit leaves them (the hashes are not checked here: this is about finding records).
    await dataSource.query(
      `INSERT INTO keyhold_audit_records (sequence, time, plane, actor, operation, key_name, key_version, outcome, request_id,
         source_address, prev_hash, hash)
       SELECT s, timestamptz '2026-11-28T00:00:00Z' + s * interval '1 millisecond', 'service',
         CASE WHEN s = ANY($2::bigint[]) THEN $4 ELSE $3 END, 'encrypt',
         CASE WHEN s = ANY($1::bigint[]) THEN $6 WHEN s % 20 = 0 THEN $7 ELSE $5 END, 1, 'success', md5(s::text), '10.0.0.7', repeat('a', 64), repeat('b', 64)
       FROM generate_series(1, ${RECORDS}) AS s`,
      [RARE_KEY_SEQUENCES, RARE_ACTOR_SEQUENCES, COMMON_ACTOR, RARE_ACTOR, COMMON_KEY, RARE_KEY, TWENTIETH_KEY],
    );
    // What autosummarize and autovacuum do in the background, done now.
    await dataSource.query(`SELECT brin_summarize_new_values('keyhold_audit_records_key_actor')`);
    await dataSource.query('ANALYZE keyhold_audit_records');
    [{ tablePages }] = await dataSource.query(`SELECT relpages AS "tablePages" FROM pg_class WHERE relname = 'keyhold_audit_records'`);
  });
  after(async () => {
    await dataSource?.destroy();
    await database?.drop();
  });

  async function run(filter: AuditFilter): Promise<{ sequences: number[]; indexes: string[]; pagesRead: number }> {
    const query = auditRecordsQuery(filter, 0, 100);
    const rows: Array<{ sequence: string }> = await dataSource.query(query.text, query.values);
    const [{ 'QUERY PLAN': [plan] }] = await dataSource.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${query.text}`, query.values);
    const top = plan.Plan as PlanNode;
    return {
      sequences: rows.map((row) => Number(row.sequence)),
      indexes: indexesUsed(top),
      pagesRead: (top['Shared Hit Blocks'] ?? 0) + (top['Shared Read Blocks'] ?? 0),
    };
  }

  it('the index is a BRIN bloom index on key and actor, and the per-record B-trees are gone', async () => {
    const indexes: Array<{ indexname: string; indexdef: string }> = await dataSource.query(
      `SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'keyhold_audit_records' ORDER BY indexname`,
    );
    assert.deepEqual(
      indexes.map((index) => index.indexname),
      ['keyhold_audit_records_key_actor', 'keyhold_audit_records_pkey', 'keyhold_audit_records_time'],
    );
    assert.match(indexes[0].indexdef, /USING brin \(key_name text_bloom_ops, actor text_bloom_ops\)/);
    assert.ok(tablePages > 1000, `the trail fills ${tablePages} pages`);
  });

  it('a rare key: its records exactly, found through the index, reading a small part of the table', async () => {
    const { sequences, indexes, pagesRead } = await run({ key: RARE_KEY } as AuditFilter);
    assert.deepEqual(sequences, RARE_KEY_SEQUENCES);
    assert.ok(indexes.includes('keyhold_audit_records_key_actor'), `plan uses ${indexes.join(', ') || 'no index'}`);
    assert.ok(pagesRead < tablePages / 10, `read ${pagesRead} of ${tablePages} pages`);
  });

  it('a rare actor, and a rare actor with a key: the same', async () => {
    const byActor = await run({ actor: RARE_ACTOR } as AuditFilter);
    assert.deepEqual(byActor.sequences, RARE_ACTOR_SEQUENCES);
    assert.ok(byActor.indexes.includes('keyhold_audit_records_key_actor'), `plan uses ${byActor.indexes.join(', ') || 'no index'}`);
    assert.ok(byActor.pagesRead < tablePages / 10, `read ${byActor.pagesRead} of ${tablePages} pages`);
    const both = await run({ actor: RARE_ACTOR, key: COMMON_KEY } as AuditFilter);
    assert.deepEqual(both.sequences, RARE_ACTOR_SEQUENCES);
    assert.ok(both.pagesRead < tablePages / 10, `read ${both.pagesRead} of ${tablePages} pages`);
  });

  it('a key on nearly every record: the first page in sequence order, without reading the whole table', async () => {
    const { sequences, pagesRead } = await run({ key: COMMON_KEY } as AuditFilter);
    assert.equal(sequences.length, 100);
    assert.deepEqual(sequences.slice(0, 3), [1, 2, 3]);
    assert.ok(pagesRead < tablePages / 10, `read ${pagesRead} of ${tablePages} pages`);
  });

  it('a key on every 20th record, from a cursor in the middle: the next page in order, without reading the whole table', async () => {
    const query = auditRecordsQuery({ key: TWENTIETH_KEY } as AuditFilter, 40_000, 100);
    const rows: Array<{ sequence: string }> = await dataSource.query(query.text, query.values);
    assert.deepEqual(
      rows.map((row) => Number(row.sequence)),
      Array.from({ length: 100 }, (_, index) => 40_020 + index * 20),
    );
    const { pagesRead } = await run({ key: TWENTIETH_KEY } as AuditFilter);
    assert.ok(pagesRead < tablePages / 10, `read ${pagesRead} of ${tablePages} pages`);
  });

  it('a rare key within a time window: its records in the window only', async () => {
    // Record s was written at 00:00:00 plus s milliseconds: the window holds records 30 002 to 30 500.
    const { sequences, pagesRead } = await run({ key: RARE_KEY, from: '2026-11-28T00:00:30.002Z', to: '2026-11-28T00:00:30.501Z' } as AuditFilter);
    assert.deepEqual(sequences, [30_002, 30_003, 30_500]);
    assert.ok(pagesRead < tablePages / 10, `read ${pagesRead} of ${tablePages} pages`);
  });

  it('a key no record has: nothing, through the index', async () => {
    const { sequences, indexes, pagesRead } = await run({ key: 'never-used' } as AuditFilter);
    assert.deepEqual(sequences, []);
    assert.ok(indexes.includes('keyhold_audit_records_key_actor'), `plan uses ${indexes.join(', ') || 'no index'}`);
    assert.ok(pagesRead < tablePages / 10, `read ${pagesRead} of ${tablePages} pages`);
  });
});
