import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DataSource } from 'typeorm';
import { type AuditRecord, randomBytes, verifyAuditChain } from '@keyhold/crypto-core';
import { auditRecordFromRow, auditRecordsQuery } from '@keyhold/contracts';
import { openDatabase } from '../../src/database/data-source';
import { InMemoryMasterKey } from '../../src/seal/master-key';
import { SealState } from '../../src/seal/seal-state';
import { initShamirMasterKey } from '../../src/seal/shamir-seal';
import { type TestDatabase, createTestDatabase } from '../support/test-database';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

const CREATIONS = ['audit.keys.create', 'ca.create'];

/** A database with its schema and nothing else, as a first start finds it. */
async function migratedDatabase(): Promise<TestDatabase> {
  const database = await createTestDatabase();
  const dataSource = await openDatabase(database.url);
  await dataSource.destroy();
  return database;
}

async function chain(dataSource: DataSource): Promise<AuditRecord[]> {
  const query = auditRecordsQuery({}, 0, 10_000);
  const rows: Array<Record<string, unknown>> = await dataSource.query(query.text, query.values);
  return rows.map(auditRecordFromRow);
}

const creationsIn = (records: readonly AuditRecord[]) => records.filter((record) => record.actor === 'system:bootstrap').map((record) => record.operation);

async function counts(dataSource: DataSource): Promise<{ auditKeys: number; ca: number }> {
  const [row] = await dataSource.query(
    `SELECT (SELECT count(*) FROM keyhold_audit_keys)::int AS "auditKeys", (SELECT count(*) FROM keyhold_certificate_authority)::int AS ca`,
  );
  return row;
}

/** Postgres refuses the records of these operations, as it would any record when it fails: the trigger stands in. */
async function refuseRecordsOf(dataSource: DataSource, operations: string[]): Promise<() => Promise<void>> {
  const list = operations.map((operation) => `'${operation}'`).join(', ');
  await dataSource.query(`CREATE FUNCTION keyhold_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF NEW.operation IN (${list}) THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$`);
  await dataSource.query('CREATE TRIGGER keyhold_test_refuse BEFORE INSERT ON keyhold_audit_records FOR EACH ROW EXECUTE FUNCTION keyhold_test_refuse()');
  return async () => {
    await dataSource.query('DROP TRIGGER keyhold_test_refuse ON keyhold_audit_records');
    await dataSource.query('DROP FUNCTION keyhold_test_refuse()');
  };
}

describe('the audit keys and the service-identity CA: created at the first unsealed start, with their records', () => {
  const masterKey = new InMemoryMasterKey(randomBytes(32), 1, 'development-file');
  let database: TestDatabase;
  let kh: TestKeyhold;

  before(async () => {
    database = await createTestDatabase();
  });
  after(async () => {
    await kh.stop();
    await database.drop();
  });

  it('a fresh database started unsealed has one record of each creation, by system:bootstrap, in a chain that verifies', async () => {
    kh = await startTestKeyhold({ databaseUrl: database.url, masterKey });
    assert.deepEqual(await counts(kh.dataSource), { auditKeys: 2, ca: 1 });
    const records = await chain(kh.dataSource);
    assert.deepEqual(
      records.map((r) => [r.sequence, r.plane, r.actor, r.operation, r.keyName, r.keyVersion, r.outcome, r.errorCode, r.requestId, r.sourceAddress, r.contextHmac]),
      [
        [1, 'system', 'system:bootstrap', 'audit.keys.create', null, null, 'success', null, null, null, null],
        [2, 'system', 'system:bootstrap', 'ca.create', null, null, 'success', null, null, null, null],
      ],
    );
    assert.ok(verifyAuditChain(records).ok);
    // The chain goes on after them.
    await kh.http().post('/v1/keys').send({ name: 'after-bootstrap', algorithm: 'aes-256-gcm' }).expect(201);
    const longer = await chain(kh.dataSource);
    assert.equal(longer.length, 3);
    assert.ok(verifyAuditChain(longer).ok);
  });

  it('a restart on the same database creates nothing and records nothing', async () => {
    const before = await chain(kh.dataSource);
    await kh.stop();
    kh = await startTestKeyhold({ databaseUrl: database.url, masterKey });
    await kh.http().get('/v1/health').expect(200);
    const records = await chain(kh.dataSource);
    assert.deepEqual(records, before);
    assert.deepEqual(await counts(kh.dataSource), { auditKeys: 2, ca: 1 });
  });
});

describe('several instances starting at once on a new database', () => {
  let instances: TestKeyhold[] = [];
  let database: TestDatabase;

  before(async () => {
    database = await migratedDatabase();
  });
  after(async () => {
    for (const instance of instances) await instance.stop();
    await database.drop();
  });

  it('create each key once, and only the instance that created it records it', async () => {
    const masterKey = new InMemoryMasterKey(randomBytes(32), 1, 'development-file');
    instances = await Promise.all([1, 2, 3].map(() => startTestKeyhold({ databaseUrl: database.url, masterKey })));
    const records = await chain(instances[0].dataSource);
    assert.deepEqual(creationsIn(records).sort(), CREATIONS);
    assert.deepEqual(await counts(instances[0].dataSource), { auditKeys: 2, ca: 1 });
    assert.ok(verifyAuditChain(records).ok);
  });
});

describe('a creation whose record cannot be written does not happen: the start fails closed', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  let kh: TestKeyhold | null = null;
  const masterKey = new InMemoryMasterKey(randomBytes(32), 1, 'development-file');

  before(async () => {
    database = await migratedDatabase();
    dataSource = await openDatabase(database.url);
  });
  after(async () => {
    await kh?.stop();
    await dataSource.destroy();
    await database.drop();
  });

  it('no audit keys without their record: the start fails and leaves no key and no record', async () => {
    const allow = await refuseRecordsOf(dataSource, ['audit.keys.create']);
    try {
      await assert.rejects(startTestKeyhold({ databaseUrl: database.url, masterKey }), /audit record of this request could not be written/);
    } finally {
      await allow();
    }
    assert.deepEqual(await counts(dataSource), { auditKeys: 0, ca: 0 });
    assert.deepEqual(await chain(dataSource), []);
  });

  it('no CA without its record: the start fails after the audit keys (created and recorded) and leaves no CA', async () => {
    const allow = await refuseRecordsOf(dataSource, ['ca.create']);
    try {
      await assert.rejects(startTestKeyhold({ databaseUrl: database.url, masterKey }), /audit record of this request could not be written/);
    } finally {
      await allow();
    }
    assert.deepEqual(await counts(dataSource), { auditKeys: 2, ca: 0 });
    assert.deepEqual(creationsIn(await chain(dataSource)), ['audit.keys.create']);
  });

  it('once records can be written, the next start creates the rest, recorded once', async () => {
    kh = await startTestKeyhold({ databaseUrl: database.url, masterKey });
    const records = await chain(dataSource);
    assert.deepEqual(creationsIn(records), CREATIONS);
    assert.deepEqual(await counts(dataSource), { auditKeys: 2, ca: 1 });
    assert.ok(verifyAuditChain(records).ok);
  });
});

describe('KEYHOLD_AUDIT=off (development only): the keys are created, nothing is recorded', () => {
  let kh: TestKeyhold;
  before(async () => {
    kh = await startTestKeyhold({ audit: { enabled: false } });
  });
  after(async () => {
    await kh.stop();
  });

  it('creates the audit keys and the CA without a record', async () => {
    assert.deepEqual(await counts(kh.dataSource), { auditKeys: 2, ca: 1 });
    assert.deepEqual(await chain(kh.dataSource), []);
  });
});

describe('a sealed first start (Shamir): the creations are recorded at the first unseal, which fails closed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-bootstrap-'));
  let kh: TestKeyhold;
  let shares: string[];
  const submit = (share: string) => kh.adminHttp().post('/api/v1/seal/shares').send({ share });

  before(async () => {
    const init = await initShamirMasterKey(join(dir, 'v.json'), 3, 2);
    shares = init.shares;
    kh = await startTestKeyhold({ admin: true, seal: { state: new SealState('shamir', null), shamir: init.file } });
  });
  after(async () => {
    await kh.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sealed, nothing is created or recorded', async () => {
    assert.deepEqual(await counts(kh.dataSource), { auditKeys: 0, ca: 0 });
    assert.deepEqual(creationsIn(await chain(kh.dataSource)), []);
  });

  it('an unseal whose creation cannot be recorded answers 503 UNAVAILABLE and leaves Keyhold sealed', async () => {
    const allow = await refuseRecordsOf(kh.dataSource, ['ca.create']);
    try {
      await submit(shares[0]).expect(200);
      const refused = await submit(shares[1]).expect(503);
      assert.equal(refused.body.error.code, 'UNAVAILABLE');
      assert.match(refused.body.error.message, /sealed again; submit the shares again/);
    } finally {
      await allow();
    }
    assert.equal(kh.server.seal.state.sealed, true);
    assert.equal((await kh.http().get('/v1/keys').expect(503)).body.error.code, 'SEALED');
    assert.equal((await kh.adminHttp().get('/api/v1/seal').expect(200)).body.received, 0);
    assert.deepEqual(await counts(kh.dataSource), { auditKeys: 2, ca: 0 });
  });

  it('the next unseal creates the CA; each creation is recorded once, before the share that unsealed', async () => {
    await submit(shares[1]).expect(200);
    assert.equal((await submit(shares[2]).expect(200)).body.sealed, false);
    await kh.http().get('/v1/keys').expect(200);
    assert.deepEqual(await counts(kh.dataSource), { auditKeys: 2, ca: 1 });
    const records = await chain(kh.dataSource);
    assert.deepEqual(creationsIn(records), CREATIONS);
    const ca = records.findIndex((record) => record.operation === 'ca.create');
    assert.deepEqual(
      records.slice(ca + 1).map((record) => [record.operation, record.outcome]),
      [
        ['seal.submit-share', 'success'],
        ['keys.list', 'success'],
      ],
    );
    assert.ok(verifyAuditChain(records).ok);
  });
});
