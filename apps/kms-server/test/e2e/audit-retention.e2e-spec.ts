import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type AuditReader, createAuditReader } from '../support/audit-reader';
import { kmsctl } from '../support/kmsctl';
import { type TestAdmin, enrolAdmin, inviteAdmin, setupTokenOf, signIn } from '../support/test-admins';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

type Row = Record<string, unknown>;
const MIN_RETENTION_DAYS = 30;

describe('audit retention: pruning through a signed checkpoint, and verification from the signed prune', () => {
  let kh: TestKeyhold;
  let alice: TestAdmin;
  let auditor: TestAdmin;
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-retention-'));
  let reader: AuditReader;
  let readerUrl = '';
  let publicKeyFile = '';
  /** KEYHOLD_AUDIT_ARCHIVE_DIR: every prune writes what it removes here first. */
  const archiveDir = join(dir, 'archive');
  mkdirSync(archiveDir);
  /** The archive a prune made: named in its result, complete (its size and SHA-256 as reported), and it verifies offline. */
  const checkArchive = async (result: { archive: { file: string; bytes: number; sha256: string; records: number } }, first: number, through: number) => {
    assert.equal(result.archive.file, `keyhold-audit-${first}-${through}.jsonl.gz`);
    const path = join(archiveDir, result.archive.file);
    assert.equal(statSync(path).size, result.archive.bytes);
    assert.equal(createHash('sha256').update(readFileSync(path)).digest('hex'), result.archive.sha256);
    assert.equal(result.archive.records, through - first + 1);
    assert.deepEqual(readdirSync(archiveDir).filter((name) => name.endsWith('.partial')), [], 'no partial file is left');
    const verified = await kmsctl(['audit', 'verify', '--file', path, '--public-key', publicKeyFile]);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, new RegExp(`^OK: ${through - first + 1} record\\(s\\) #${first}\\.\\.#${through}, \\d+ checkpoint\\(s\\) .*latest signed checkpoint #${through}; 0 record\\(s\\) after it`));
    return verified.stdout;
  };

  const verifyDatabase = (...args: string[]) => kmsctl(['audit', 'verify', '--public-key', publicKeyFile, ...args], { KEYHOLD_AUDIT_DATABASE_URL: readerUrl });
  const encrypt = async (count: number) => {
    for (let i = 0; i < count; i += 1) await kh.http().post('/v1/keys/retained/encrypt').send({ plaintext: Buffer.from(`secret ${i}`).toString('base64') }).expect(200);
  };
  const checkpoint = async (): Promise<number> => {
    const signed = await kh.adminHttp(auditor.session).post('/api/v1/audit/checkpoints').expect(200);
    return signed.body.checkpoint.sequence as number;
  };
  const firstSequence = async (): Promise<number> => Number((await kh.dataSource.query('SELECT min(sequence)::text AS first FROM keyhold_audit_records'))[0].first);
  const requestPrune = (admin: TestAdmin, throughSequence: unknown) => kh.adminHttp(admin.session).post('/api/v1/audit/prune').send({ throughSequence });
  /** Requests a sensitive operation and approves it with the requester's passkey (a quorum of one): the operation as decided. */
  const requestAndApprove = async (path: string, body: object, operation: object) => {
    const requested = await kh.adminHttp(alice.session).post(path).send(body);
    assert.equal(requested.status, 201, requested.text);
    assert.deepEqual(requested.body.operation.operation, operation);
    const response = await alice.authenticator.getAssertion(requested.body.assertionOptions);
    const approved = await kh.adminHttp(alice.session).post(`/api/v1/operations/${requested.body.operation.id}/approvals`).send({ response });
    assert.equal(approved.status, 200, approved.text);
    return approved.body;
  };
  const prune = (throughSequence: number) =>
    requestAndApprove('/api/v1/audit/prune', { throughSequence }, { kind: 'prune-audit-records', throughSequence });
  const setRetention = (days: number | null) => requestAndApprove('/api/v1/audit/retention-policy', { days }, { kind: 'set-audit-retention', days });
  /** The server's clock moves on: sessions lapse, so both admins sign in again. */
  const advanceDays = async (days: number) => {
    kh.clock.advanceDays(days);
    alice.session = await signIn(kh, alice.authenticator);
    auditor.session = await signIn(kh, auditor.authenticator);
  };
  /** Runs `change` on the database, then `check`, then puts back what `change` returned a way to restore. */
  const tampered = async (change: () => Promise<() => Promise<void>>, check: () => Promise<void>) => {
    const restore = await change();
    try {
      await check();
    } finally {
      await restore();
    }
  };

  before(async () => {
    kh = await startTestKeyhold({ admin: true, audit: { checkpoints: { intervalMs: 0, everyRecords: 0 }, minRetentionDays: MIN_RETENTION_DAYS, retentionIntervalMs: 50, archiveDir } });
    alice = await enrolAdmin(kh, 'alice', setupTokenOf(kh));
    auditor = await inviteAdmin(kh, alice, 'audrey', 'auditor');
    reader = await createAuditReader(kh, auditor.session, dir);
    readerUrl = reader.url;
    publicKeyFile = reader.publicKeyFile;
    await kh.http().post('/v1/keys').send({ name: 'retained', algorithm: 'aes-256-gcm' }).expect(201);
  });
  after(async () => {
    await kh.stop();
    await reader?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a prune that is not through a checkpoint, through records younger than the retention, or by a non-admin', async () => {
    await encrypt(10);
    const through = await checkpoint();
    const notCheckpoint = await requestPrune(alice, through - 1);
    assert.equal(notCheckpoint.status, 400, notCheckpoint.text);
    assert.match(notCheckpoint.body.error.message, new RegExp(`no signed checkpoint at #${through - 1}`));
    for (const bad of [0, -3, 1.5, '12', null]) assert.equal((await requestPrune(alice, bad)).status, 400, `throughSequence ${JSON.stringify(bad)}`);
    const early = await kh.adminHttp(auditor.session).get('/api/v1/audit/retention').expect(200);
    assert.deepEqual([early.body.minRetentionDays, early.body.prune, early.body.firstSequence, early.body.candidates, early.body.archiving], [MIN_RETENTION_DAYS, null, 1, [], true]);
    assert.equal(early.body.cutoff, new Date(kh.clock.now().getTime() - MIN_RETENTION_DAYS * 86_400_000).toISOString());
    const young = await requestPrune(alice, through);
    assert.equal(young.status, 409, young.text);
    assert.equal(young.body.error.code, 'INVALID_STATE');
    assert.match(young.body.error.message, /kept at least 30 days \(KEYHOLD_AUDIT_MIN_RETENTION_DAYS\)/);
    assert.equal((await requestPrune(auditor, through)).status, 403);
    assert.equal(await firstSequence(), 1, 'nothing was removed');
  });

  it('prunes through an old enough checkpoint: the records and earlier checkpoints go, a signed prune stays, and the chain still verifies', async () => {
    const through = await checkpoint(); // the latest: the records of the refusals above are in it
    await advanceDays(MIN_RETENTION_DAYS + 1);
    await encrypt(5);
    const before = Number((await kh.dataSource.query('SELECT count(*)::int AS n FROM keyhold_audit_records WHERE sequence <= $1', [through]))[0].n);
    const checkpointsBefore = Number((await kh.dataSource.query('SELECT count(*)::int AS n FROM keyhold_audit_checkpoints WHERE sequence < $1', [through]))[0].n);

    const offered = await kh.adminHttp(auditor.session).get('/api/v1/audit/retention').expect(200);
    const candidates = offered.body.candidates as Array<{ sequence: number; time: string }>;
    // Both checkpoints signed so far are old enough now, the newest first.
    assert.equal(candidates.length, 2);
    assert.ok(candidates[0].sequence === through && candidates[1].sequence < through, JSON.stringify(candidates));

    const decided = await prune(through);
    assert.equal(decided.status, 'executed', JSON.stringify(decided.result));
    assert.equal(decided.result.recordsRemoved, before);
    assert.equal(decided.result.checkpointsRemoved, checkpointsBefore);
    assert.equal(decided.result.prune.throughSequence, through);
    assert.equal(await firstSequence(), through + 1);
    // What it removed is in the archive folder, verified as it was written, and verifies offline from the genesis.
    await checkArchive(decided.result, 1, through);
    const kept: Row[] = await kh.dataSource.query('SELECT sequence FROM keyhold_audit_checkpoints ORDER BY sequence');
    assert.deepEqual(kept.map((row) => Number(row.sequence)), [through], 'the checkpoint pruned through stays; the ones before it go');

    // The prune records itself, as by the admin whose approval ran it, after the request and the approval.
    const [pruneRecord]: Row[] = await kh.dataSource.query(`SELECT * FROM keyhold_audit_records WHERE operation = 'audit.prune'`);
    assert.deepEqual([pruneRecord.actor, pruneRecord.outcome, pruneRecord.plane], [`admin:${alice.id}`, 'success', 'admin']);
    const requests: Row[] = await kh.dataSource.query(`SELECT operation FROM keyhold_audit_records WHERE operation IN ('audit.prune-request', 'operations.approve') ORDER BY sequence`);
    assert.deepEqual(requests.map((row) => row.operation), ['audit.prune-request', 'operations.approve']);

    const after = await kh.adminHttp(auditor.session).get('/api/v1/audit/retention').expect(200);
    assert.deepEqual([after.body.prune.throughSequence, after.body.firstSequence, after.body.candidates], [through, through + 1, []]);
    const listed = await kh.adminHttp(auditor.session).get('/api/v1/audit/checkpoints').expect(200);
    assert.deepEqual([listed.body.prune.throughSequence, listed.body.prune.anchorHash], [through, decided.result.prune.anchorHash]);

    // kmsctl from Postgres: the whole chain (from 1, by default) verifies from the signed prune.
    const verified = await verifyDatabase();
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, new RegExp(`^OK: \\d+ record\\(s\\) #${through + 1}\\.\\.#\\d+, .*records through #${through} were pruned by Keyhold at .* \\(signed prune verified\\)`));
    // An export carries the prune before the records and verifies offline; the checkpointer signs on.
    const exported = await kh.adminHttp(auditor.session).get('/api/v1/audit/export').expect(200);
    const lines = exported.text.trim().split('\n').map((line) => JSON.parse(line));
    assert.deepEqual([lines[0].type, lines[1].type, lines[2].type, lines[2].sequence], ['header', 'prune', 'record', through + 1]);
    writeFileSync(join(dir, 'pruned.jsonl'), exported.text);
    const offline = await kmsctl(['audit', 'verify', '--file', join(dir, 'pruned.jsonl'), '--public-key', publicKeyFile]);
    assert.equal(offline.code, 0, offline.stdout + offline.stderr);
    assert.match(offline.stdout, /signed prune verified/);
    const cliFile = join(dir, 'cli.jsonl');
    assert.equal((await kmsctl(['audit', 'export', '--out', cliFile], { KEYHOLD_AUDIT_DATABASE_URL: readerUrl })).code, 0);
    assert.equal((await kmsctl(['audit', 'verify', '--file', cliFile, '--public-key', publicKeyFile])).code, 0);
    assert.ok((await checkpoint()) > through);
  });

  it('catches what a prune does not cover: records deleted after it, the prune row deleted, or a forged one', async () => {
    const first = await firstSequence();
    const [row]: Row[] = await kh.dataSource.query('SELECT * FROM keyhold_audit_records WHERE sequence = $1', [first]);
    await tampered(
      async () => {
        await kh.dataSource.query('DELETE FROM keyhold_audit_records WHERE sequence = $1', [first]);
        return async () => {
          const columns = Object.keys(row);
          await kh.dataSource.query(`INSERT INTO keyhold_audit_records (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`, columns.map((c) => row[c]));
        };
      },
      async () => {
        const result = await verifyDatabase();
        assert.equal(result.code, 1);
        assert.match(result.stdout, new RegExp(`^BROKEN at #${first} \\(deleted\\)`));
      },
    );
    const [pruneRow]: Row[] = await kh.dataSource.query('SELECT * FROM keyhold_audit_prunes');
    await tampered(
      async () => {
        await kh.dataSource.query('DELETE FROM keyhold_audit_prunes');
        return async () => {
          await kh.dataSource.query('INSERT INTO keyhold_audit_prunes (through_sequence, anchor_hash, time, key_fingerprint, signature) VALUES ($1, $2, $3, $4, $5)', [
            pruneRow.through_sequence, pruneRow.anchor_hash, pruneRow.time, pruneRow.key_fingerprint, pruneRow.signature,
          ]);
        };
      },
      async () => {
        const result = await verifyDatabase();
        assert.equal(result.code, 1);
        assert.match(result.stdout, /^BROKEN at #1 \(deleted\): .*#1\.\.#\d+ were deleted/);
      },
    );
    // A prune moved further on, to cover more deleted records, no longer matches its signature.
    await tampered(
      async () => {
        await kh.dataSource.query('UPDATE keyhold_audit_prunes SET through_sequence = through_sequence + 1');
        return async () => {
          await kh.dataSource.query('UPDATE keyhold_audit_prunes SET through_sequence = through_sequence - 1');
        };
      },
      async () => {
        const result = await verifyDatabase();
        assert.equal(result.code, 1);
        assert.match(result.stdout, /\(bad-signature\): the prune through #\d+ .* does not verify/);
      },
    );
    assert.equal((await verifyDatabase()).code, 0, 'restored, the chain verifies again');
  });

  it('kmsctl says which GRANT a read-only role without the prunes lacks', async () => {
    await kh.dataSource.query(`REVOKE SELECT ON keyhold_audit_prunes FROM ${reader.role}`);
    try {
      const result = await verifyDatabase();
      assert.equal(result.code, 2, result.stdout + result.stderr);
      assert.match(result.stderr, /cannot read keyhold_audit_prunes, which verification needs: GRANT SELECT ON keyhold_audit_prunes TO/);
    } finally {
      await kh.dataSource.query(`GRANT SELECT ON keyhold_audit_prunes TO ${reader.role}`);
    }
  });

  it('refuses to prune records that do not verify (nothing is removed), then prunes on from the previous prune', async () => {
    await encrypt(5);
    await advanceDays(MIN_RETENTION_DAYS + 1);
    const through = await checkpoint();
    await advanceDays(MIN_RETENTION_DAYS + 1);
    const first = await firstSequence();
    const victim = first + 2;
    const [row]: Row[] = await kh.dataSource.query('SELECT request_id FROM keyhold_audit_records WHERE sequence = $1', [victim]);
    await tampered(
      async () => {
        await kh.dataSource.query(`UPDATE keyhold_audit_records SET request_id = 'rewritten' WHERE sequence = $1`, [victim]);
        return async () => {
          await kh.dataSource.query('UPDATE keyhold_audit_records SET request_id = $2 WHERE sequence = $1', [victim, row.request_id]);
        };
      },
      async () => {
        const refused = await prune(through);
        assert.equal(refused.status, 'failed');
        assert.equal(refused.result.error.code, 'INVALID_STATE');
        assert.match(refused.result.error.message, new RegExp(`the records to prune do not verify \\(record #${victim} was altered.*nothing was pruned`));
        assert.equal(await firstSequence(), first, 'nothing was removed');
        assert.deepEqual(readdirSync(archiveDir).filter((name) => name.includes(`-${through}.`)), [], 'nor archived: the partial file is gone');
      },
    );
    // The previous prune, which these records continue from, must still be Keyhold's.
    const [{ signature }]: Row[] = await kh.dataSource.query('SELECT signature FROM keyhold_audit_prunes');
    await tampered(
      async () => {
        await kh.dataSource.query(`UPDATE keyhold_audit_prunes SET signature = $1`, [Buffer.alloc(64, 7).toString('base64')]);
        return async () => {
          await kh.dataSource.query('UPDATE keyhold_audit_prunes SET signature = $1', [signature]);
        };
      },
      async () => {
        const refused = await prune(through);
        assert.equal(refused.status, 'failed');
        assert.match(refused.result.error.message, /the previous prune \(through #\d+\) does not verify under the audit public key: nothing was pruned/);
        assert.equal(await firstSequence(), first, 'nothing was removed');
      },
    );
    const decided = await prune(through);
    assert.equal(decided.status, 'executed', JSON.stringify(decided.result));
    assert.equal(await firstSequence(), through + 1);
    assert.equal((await verifyDatabase()).code, 0);
    // The second archive starts after the first prune, which it carries: it verifies on its own, from that prune.
    assert.match(await checkArchive(decided.result, first, through), new RegExp(`records through #${first - 1} were pruned by Keyhold .* \\(signed prune verified\\)`));
    // The archives and an export of what the database holds now are one chain, from #1 to the export's end.
    const archives = [join(archiveDir, `keyhold-audit-1-${first - 1}.jsonl.gz`), join(archiveDir, decided.result.archive.file)];
    // kmsctl exports gzip-compressed to a name ending in .gz, under that name only once complete.
    const live = join(dir, 'live.jsonl.gz');
    const exported = await kmsctl(['audit', 'export', '--out', live], { KEYHOLD_AUDIT_DATABASE_URL: readerUrl });
    assert.equal(exported.code, 0, exported.stderr);
    assert.match(exported.stderr, /exported \d+ record\(s\), gzip-compressed/);
    assert.deepEqual([...readFileSync(live).subarray(0, 2)], [0x1f, 0x8b]);
    assert.equal(existsSync(`${live}.partial`), false);
    const nowhere = await kmsctl(['audit', 'export', '--out', join(dir, 'no-such-folder', 'x.jsonl')], { KEYHOLD_AUDIT_DATABASE_URL: readerUrl });
    assert.equal(nowhere.code, 2);
    assert.match(nowhere.stderr, /^kmsctl: ENOENT: no such file or directory, open '.*x\.jsonl\.partial'/);
    const verifyFiles = (...files: string[]) => kmsctl(['audit', 'verify', '--public-key', publicKeyFile, ...files.flatMap((file) => ['--file', file])]);
    const whole = await verifyFiles(...archives, live);
    assert.equal(whole.code, 0, whole.stdout + whole.stderr);
    assert.match(whole.stdout, /^OK: \d+ record\(s\) #1\.\.#\d+ in 3 files, each continuing the one before, \d+ checkpoint\(s\) verified/);
    const missing = await verifyFiles(archives[0], live);
    assert.equal(missing.code, 1);
    assert.match(missing.stdout, new RegExp(`^BROKEN at #${first} \\(deleted\\): .* ends at #${first - 1} but .*live\\.jsonl\\.gz continues after #${through}: records #${first}\\.\\.#${through} are in neither`));
    // The archives, then the database itself (--database-url alongside the files): the same proof without an export.
    const withDatabase = await kmsctl(['audit', 'verify', '--public-key', publicKeyFile, '--file', archives[0], '--file', archives[1], '--database-url', readerUrl]);
    assert.equal(withDatabase.code, 0, withDatabase.stdout + withDatabase.stderr);
    assert.match(withDatabase.stdout, /^OK: \d+ record\(s\) #1\.\.#\d+ in 2 files and the database, each continuing the one before/);
    const skipped = await kmsctl(['audit', 'verify', '--public-key', publicKeyFile, '--file', archives[0], '--database-url', readerUrl]);
    assert.equal(skipped.code, 1);
    assert.match(skipped.stdout, new RegExp(`^BROKEN at #${first} \\(deleted\\): .* ends at #${first - 1} but the database continues after #${through}`));
    const shuffled = await verifyFiles(live, archives[1]);
    assert.equal(shuffled.code, 1);
    assert.match(shuffled.stdout, /\(reordered\): .* give the files in chain order/);
    const again = await requestPrune(alice, through);
    assert.equal(again.status, 409);
    assert.match(again.body.error.message, new RegExp(`the records through #${through} were already pruned`));
  });

  it('a standing retention, approved once, prunes by itself through the latest checkpoint old enough, recorded as system:retention', async () => {
    const short = await kh.adminHttp(alice.session).post('/api/v1/audit/retention-policy').send({ days: MIN_RETENTION_DAYS - 1 });
    assert.equal(short.status, 400, short.text);
    assert.match(short.body.error.message, /a retention of 29 days is shorter than the minimum retention of this server, 30 days/);
    assert.equal((await kh.adminHttp(auditor.session).post('/api/v1/audit/retention-policy').send({ days: 40 })).status, 403);
    const set = await setRetention(40);
    assert.deepEqual([set.status, set.result], ['executed', { days: 40 }]);
    assert.equal((await kh.adminHttp(auditor.session).get('/api/v1/audit/retention').expect(200)).body.policyDays, 40);
    const [change]: Row[] = await kh.dataSource.query(`SELECT * FROM keyhold_audit_records WHERE operation = 'audit.set-retention'`);
    assert.equal(change.actor, `admin:${alice.id}`, 'the change is recorded as by the admin whose approval made it');

    await encrypt(5);
    const old = await checkpoint();
    assert.deepEqual(await kh.server.audit.pruner?.pruneDue(), [], 'nothing is 40 days old yet');
    await advanceDays(41);
    await encrypt(3);
    const young = await checkpoint();
    // A record altered in the range due: the pass fails, removes nothing, and the metrics count it.
    await tampered(
      async () => {
        await kh.dataSource.query(`UPDATE keyhold_audit_records SET outcome = 'error' WHERE sequence = $1`, [old]);
        return async () => {
          await kh.dataSource.query(`UPDATE keyhold_audit_records SET outcome = 'success' WHERE sequence = $1`, [old]);
        };
      },
      async () => {
        await assert.rejects(kh.server.audit.pruner?.pruneDue() ?? Promise.resolve(), new RegExp(`record #${old} was altered`));
        const metrics = (await kh.http().get('/v1/metrics').expect(200)).text;
        assert.match(metrics, /^keyhold_audit_retention_failures_total 1$/m);
      },
    );
    // Its own timer (the scheduler starts it in a server; here by hand, every 50 ms) makes the prune.
    kh.server.audit.pruner?.start();
    try {
      for (let attempt = 0; attempt < 200 && (await firstSequence()) !== old + 1; attempt += 1) await new Promise((resolve) => setTimeout(resolve, 25));
    } finally {
      await kh.server.audit.pruner?.stop();
    }
    assert.equal(await firstSequence(), old + 1, 'pruned through the latest checkpoint older than 40 days, and no further');
    const [record]: Row[] = await kh.dataSource.query(`SELECT * FROM keyhold_audit_records WHERE operation = 'audit.prune' ORDER BY sequence DESC LIMIT 1`);
    assert.deepEqual([record.actor, record.plane, record.outcome], ['system:retention', 'system', 'success']);
    assert.equal((await verifyDatabase()).code, 0);

    // Ended (null): nothing is pruned by itself any more, however old.
    assert.equal((await setRetention(null)).status, 'executed');
    await advanceDays(41);
    assert.deepEqual(await kh.server.audit.pruner?.pruneDue(), []);
    assert.ok((await firstSequence()) <= young, 'the younger checkpoint was not pruned');
    assert.equal((await kh.adminHttp(auditor.session).get('/api/v1/audit/retention').expect(200)).body.policyDays, null);
  });

  it('refuses to prune, removing nothing, when the archive cannot be written; the standing retention archives too', async () => {
    await encrypt(4);
    const through = await checkpoint();
    await advanceDays(MIN_RETENTION_DAYS + 1);
    const first = await firstSequence();
    renameSync(archiveDir, `${archiveDir}.away`);
    try {
      const refused = await prune(through);
      assert.equal(refused.status, 'failed');
      assert.equal(refused.result.error.code, 'UNAVAILABLE');
      assert.equal(refused.result.error.message, `the archive of #${first}..#${through} could not be written in KEYHOLD_AUDIT_ARCHIVE_DIR (ENOENT): nothing was pruned`);
      assert.equal(await firstSequence(), first, 'nothing was removed');
    } finally {
      renameSync(`${archiveDir}.away`, archiveDir);
    }
    // A standing retention's prune goes through the same archive.
    assert.equal((await setRetention(MIN_RETENTION_DAYS)).status, 'executed');
    try {
      const [pruned] = (await kh.server.audit.pruner?.pruneDue()) ?? [];
      assert.equal(pruned?.prune.throughSequence, through);
      await checkArchive(pruned as never, first, through);
      assert.ok(existsSync(join(archiveDir, `keyhold-audit-1-${first - 1}.jsonl.gz`)) || readdirSync(archiveDir).length >= 3, 'earlier archives stay');
    } finally {
      await setRetention(null);
    }
    // Every prune of this file ran on this instance: the metrics count the records before the chain's start, and the archives' bytes.
    const metrics = (await kh.http().get('/v1/metrics').expect(200)).text;
    assert.match(metrics, new RegExp(`^keyhold_audit_pruned_records_total ${(await firstSequence()) - 1}$`, 'm'));
    const archivedBytes = readdirSync(archiveDir).reduce((sum, name) => sum + statSync(join(archiveDir, name)).size, 0);
    assert.match(metrics, new RegExp(`^keyhold_audit_archived_bytes_total ${archivedBytes}$`, 'm'));
  });
});
