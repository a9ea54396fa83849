import 'reflect-metadata';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type TestAdmin, enrolAdmin, setupTokenOf } from '../support/test-admins';
import { type Credentials, type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';
import { type PostgresProxy, startPostgresProxy } from '../support/tcp-proxy';

/** Polls `check` until it holds; the deadline is generous on purpose: what is tested is that it happens at all. */
async function eventually(check: () => Promise<boolean>, what: string, withinMs = 15_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`not within ${withinMs} ms: ${what}`);
}

/**
 * Grant removals, revocations and seals must reach every instance even when its notification is lost. B misses
 * them because they are written by SQL with no NOTIFY at all; the periodic resync (300 ms here) catches up. C
 * reaches Postgres through a proxy that can silence its LISTEN connection the way a NAT or firewall does (no
 * error, no end); its periodic resync keeps the default (a minute), so only its heartbeat can find that out.
 */
describe('grants, revocations and seals reach an instance that missed their notification', () => {
  let a: TestKeyhold;
  let b: TestKeyhold;
  let c: TestKeyhold;
  let proxy: PostgresProxy;
  let root: TestAdmin;

  // An encryption, on the crypto routes' own transport: it checks the instance's own revocation list and grants.
  // (Nest routes authenticate through passport, whose strategies are per process: with several instances in one
  // test process, the last one started would answer for the others' revocations.)
  const status = async (kh: TestKeyhold, service: Credentials) =>
    (await kh.http(service).post('/v1/keys/pay-orders/encrypt').send({ plaintext: 'cGF5' })).status;

  /** A grant (managed in Postgres, through A) and a certificate issued by Keyhold for an identity under it. */
  async function grantedService(name: string): Promise<{ grantId: string; serialNumber: string; service: Credentials }> {
    const admin = a.adminHttp(root.session);
    const grant = await admin.post('/api/v1/grants').send({ identity: `spiffe://prod/ns/${name}/*`, keys: 'pay-*', operations: ['encrypt'] }).expect(201);
    const issued = await admin.post('/api/v1/certificates').send({ identity: `spiffe://prod/ns/${name}/sa/app`, validityHours: 1 }).expect(201);
    const service = { cert: issued.body.certificatePem as string, key: issued.body.privateKeyPem as string };
    for (const kh of [b, c]) await eventually(async () => (await status(kh, service)) === 200, `${name}: the grant applies on every instance`);
    return { grantId: grant.body.id as string, serialNumber: issued.body.certificate.serialNumber as string, service };
  }

  before(async () => {
    a = await startTestKeyhold({ admin: true });
    root = await enrolAdmin(a, 'root', setupTokenOf(a));
    await a.http().post('/v1/keys').send({ name: 'pay-orders', algorithm: 'aes-256-gcm' }).expect(201);
    b = await startTestKeyhold({ databaseUrl: a.database.url, masterKey: a.masterKey, resyncIntervalMs: 300 });
    proxy = await startPostgresProxy(a.database.url);
    c = await startTestKeyhold({ databaseUrl: proxy.url, masterKey: a.masterKey, listenerHeartbeat: { heartbeatIntervalMs: 200, heartbeatTimeoutMs: 500 } });
  });
  after(async () => {
    await c.stop();
    await proxy.close();
    await b.stop();
    await a.stop();
  });

  it('a grant removed and a certificate revoked with no notification stop working within the periodic resync', async () => {
    const removed = await grantedService('removed');
    const revoked = await grantedService('revoked');
    const listenerBefore = b.server.notifications.listener.backendPid();
    assert.ok(listenerBefore);

    await a.dataSource.query(`DELETE FROM keyhold_grants WHERE id = $1`, [removed.grantId]);
    await a.dataSource.query(`UPDATE keyhold_service_certificates SET revoked_at = now() WHERE serial_number = $1`, [revoked.serialNumber]);
    await eventually(async () => (await status(b, removed.service)) === 404, 'B stops applying the removed grant');
    await eventually(async () => (await status(b, revoked.service)) === 401, 'B refuses the revoked certificate');
    assert.equal(b.server.notifications.listener.backendPid(), listenerBefore, 'B caught up with no reconnection: the periodic resync did');
    // C's periodic resync is a minute away: it still knows nothing, which is what the tests below rely on.
    assert.equal(await status(c, removed.service), 200);
  });

  it('a listener whose connection Postgres ends reconnects and re-reads what it missed', async () => {
    const removed = await grantedService('terminated');
    await a.dataSource.query(`DELETE FROM keyhold_grants WHERE id = $1`, [removed.grantId]);
    const listenerBefore = c.server.notifications.listener.backendPid();
    assert.ok(listenerBefore);
    const [{ terminated }] = await a.dataSource.query(
      `SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity WHERE pid = $1 AND application_name = 'keyhold-listener'`,
      [listenerBefore],
    );
    assert.equal(terminated, true);
    await eventually(async () => (await status(c, removed.service)) === 404, 'C stops applying the removed grant after reconnecting');
    const listenerAfter = c.server.notifications.listener.backendPid();
    assert.ok(listenerAfter && listenerAfter !== listenerBefore);
  });

  it('a listener connection silenced half-open fails its heartbeat; the instance reconnects and applies the revocation it missed', async () => {
    const revoked = await grantedService('silenced');
    const listenerBefore = c.server.notifications.listener.backendPid();
    assert.equal(proxy.freeze('keyhold-listener'), 1, "C's listener connection, and only it, is silenced");

    // Revoked the ordinary way, with its NOTIFY, which C cannot hear any more.
    await a.adminHttp(root.session).post(`/api/v1/certificates/${revoked.serialNumber}/revoke`).send({ reason: 'key compromise' }).expect(200);
    await eventually(async () => (await status(c, revoked.service)) === 401, 'C refuses the revoked certificate');
    const listenerAfter = c.server.notifications.listener.backendPid();
    assert.ok(listenerAfter && listenerAfter !== listenerBefore, 'C is on a new listener connection');
    assert.ok([...a.logs, ...b.logs, ...c.logs].some((line) => line.includes('failed its heartbeat')), 'the lost connection is logged');
  });

  it('a master-key rotation and retirement B was not notified of reach B within the periodic resync', async () => {
    const ring = b.server.masterKey.ring;
    const before = ring.version;
    const next = Math.max(...ring.liveVersions()) + 1;
    // A rotation written with no NOTIFY (the service's own rotate announces itself): the new version sealed
    // under the root, made active, the old one retiring.
    const sealed = a.server.masterKey.ring.sealVersionKey(randomBytes(32), next);
    await a.dataSource.transaction(async (manager) => {
      await manager.query(`UPDATE keyhold_master_key_versions SET state = 'retiring' WHERE state = 'active'`);
      await manager.query(`INSERT INTO keyhold_master_key_versions (version, sealed_key, state, created_at) VALUES ($1, $2, 'active', now())`, [next, sealed]);
    });
    await eventually(async () => ring.version === next, 'B wraps under the new master-key version');
    await b.http().post('/v1/keys').send({ name: 'after-rotation', algorithm: 'aes-256-gcm' }).expect(201);
    const [created] = await a.dataSource.query(
      `SELECT v.master_key_version FROM keyhold_key_versions v JOIN keyhold_keys k ON k.id = v.key_id WHERE k.name = 'after-rotation'`,
    );
    assert.equal(created.master_key_version, next);

    // Everything rewrapped (A learns the version and runs its job), then the old version retired, again silently.
    await a.server.masterKey.ring.load();
    await a.server.masterKey.rewrap.runOnce();
    await a.dataSource.query(`UPDATE keyhold_master_key_versions SET state = 'retired', sealed_key = NULL, retired_at = now() WHERE version = $1`, [before]);
    await eventually(async () => !ring.liveVersions().includes(before), 'B forgets the retired master-key version');
    await b.http().post('/v1/keys/after-rotation/encrypt').send({ plaintext: 'cGF5' }).expect(200);
    await b.http().post('/v1/keys/pay-orders/encrypt').send({ plaintext: 'cGF5' }).expect(200);
  });

  it('a seal B was not notified of seals B within the periodic resync: the service plane answers 503 SEALED', async () => {
    await b.http().get('/v1/keys').expect(200);
    // The seal generation advances with no NOTIFY: as for an instance cut off when an approved seal ran.
    await a.dataSource.query(`UPDATE keyhold_seal_generation SET generation = generation + 1, sealed_at = now() WHERE id = 1`);
    await eventually(async () => (await b.http().get('/v1/keys')).status === 503, 'B seals');
    assert.equal((await b.http().get('/v1/keys').expect(503)).body.error.code, 'SEALED');
    assert.equal(b.server.seal.state.sealed, true);
    // Nest's Logger is process-wide: the line is in the log of the instance started last.
    assert.ok([...a.logs, ...b.logs, ...c.logs].some((line) => line.includes('not notified of')), 'the missed seal is logged');
  });
});
