import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from '@keyhold/crypto-core';
import { InMemoryMasterKey } from '../../src/seal/master-key';
import { SoftwareAuthenticator } from '../support/software-authenticator';
import { sessionCookieOf } from '../support/test-admins';
import { type TestDatabase, createTestDatabase } from '../support/test-database';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

// The setup link of a database without an administrator: each start without one replaces the last start's
// link, and two links redeemed at the same moment (instances starting together) still make one first admin.

const tokenOf = (kh: TestKeyhold) => new URL(kh.server.admin?.setupLink ?? 'https://x/#token=').hash.replace('#token=', '');

describe('the first administrator: one setup link, one first admin; one administrator per name', () => {
  let database: TestDatabase;
  const masterKey = new InMemoryMasterKey(randomBytes(32), 1, 'development-file');
  const instances: TestKeyhold[] = [];
  let firstAdmin: { name: string; session: { cookie: string; csrfToken: string } };
  before(async () => {
    database = await createTestDatabase();
  });
  after(async () => {
    for (const kh of instances) await kh.stop();
    await database.drop();
  });
  const start = async () => {
    const kh = await startTestKeyhold({ admin: true, databaseUrl: database.url, masterKey });
    instances.push(kh);
    return kh;
  };

  it('a later start without an administrator replaces the earlier link: only the latest opens', async () => {
    const first = await start();
    const firstToken = tokenOf(first);
    const second = await start();
    const secondToken = tokenOf(second);
    assert.notEqual(firstToken, secondToken);
    const stale = await second.adminHttp().post('/api/v1/enrolment/options').send({ token: firstToken, name: 'mallory' });
    assert.equal(stale.status, 401, stale.text);
    assert.match(stale.body.error.message, /expired/);
    assert.equal((await second.adminHttp().post('/api/v1/enrolment/options').send({ token: secondToken, name: 'alice' })).status, 200);
  });

  it('two setup links redeemed at the same moment make one first admin', async () => {
    const kh = instances[1];
    // Two instances that started at the same moment may each have a live link: the last test's first one, revived.
    await kh.dataSource.query(`UPDATE keyhold_enrolment_tokens SET expires_at = now() + interval '1 hour' WHERE kind = 'setup'`);
    const tokens = [tokenOf(instances[0]), tokenOf(instances[1])];
    const enrolments = await Promise.all(
      tokens.map(async (token, index) => {
        const authenticator = new SoftwareAuthenticator({ origin: kh.adminOrigin, rpId: 'localhost' });
        const options = await kh.adminHttp().post('/api/v1/enrolment/options').send({ token, name: `first-${index}` }).expect(200);
        return { token, response: await authenticator.createCredential(options.body) };
      }),
    );
    const answers = await Promise.all(enrolments.map((enrolment) => kh.adminHttp().post('/api/v1/enrolment').send(enrolment)));
    assert.deepEqual(answers.map((answer) => answer.status).sort(), [201, 401], answers.map((answer) => answer.text).join('\n'));
    assert.match(answers.find((answer) => answer.status === 401)?.body.error.message, /already has an administrator/);
    const [{ admins }] = await kh.dataSource.query(`SELECT count(*)::int AS admins FROM keyhold_admins`);
    assert.equal(admins, 1);
    const created = answers.find((answer) => answer.status === 201);
    firstAdmin = { name: created?.body.admin.name, session: { cookie: sessionCookieOf(created as never), csrfToken: created?.body.csrfToken } };
  });

  it('refuses a second administrator with the name of an active one, case aside', async () => {
    const kh = instances[1];
    const admin = kh.adminHttp(firstAdmin.session);
    const lookalike = firstAdmin.name.toUpperCase();
    const named = await admin.post('/api/v1/admins/invitations').send({ role: 'operator', name: lookalike });
    assert.equal(named.status, 409, named.text);
    assert.match(named.body.error.message, /already exists; choose another name/);
    const token = (await admin.post('/api/v1/admins/invitations').send({ role: 'operator' }).expect(201)).body.token;
    const taken = await kh.adminHttp().post('/api/v1/enrolment/options').send({ token, name: lookalike });
    assert.equal(taken.status, 409, taken.text);
    assert.equal((await kh.adminHttp().post('/api/v1/enrolment/options').send({ token, name: 'olga' })).status, 200, 'the link still works with another name');
    const [{ holders }] = await kh.dataSource.query(`SELECT count(*)::int AS holders FROM keyhold_admins WHERE lower(name) = lower($1)`, [firstAdmin.name]);
    assert.equal(holders, 1);
  });
});
