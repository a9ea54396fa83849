import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { ManualClock } from '@keyhold/key-lifecycle';
import { type TestAdmin, enrolAdmin, inviteAdmin, setupTokenOf } from '../support/test-admins';
import { DESKTOP, NARROW, WAIT, browserSkip, enrolThroughInvitation, horizontalOverflow, launchChromium, openDevice, screenshot } from '../support/test-browser';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

// The Master key screen in Chromium, with a quorum of 2: alice (a browser, a virtual passkey) requests a rotation and
// then the retirement of v1; bob approves each through the API with his software passkey. The page follows the
// approvals and the background rewrap by polling, and stops polling once nothing is left to follow.

/** The console's poll period while something is in progress (master-key-page.tsx POLL_MS). */
const POLL_MS = 2_000;

describe('admin console in Chromium: the master key', { skip: browserSkip }, () => {
  let kh: TestKeyhold;
  let browser: Browser;
  let bob: TestAdmin;
  let olga: TestAdmin;
  let alice: Page;

  /** bob's approval, the way a second admin gives it: the operation's passkey prompt, answered by his passkey. */
  async function approveAsBob(id: string): Promise<{ status: string }> {
    const fetched = await kh.adminHttp(bob.session).get(`/api/v1/operations/${id}`).expect(200);
    const response = await bob.authenticator.getAssertion(fetched.body.assertionOptions);
    const answer = await kh.adminHttp(bob.session).post(`/api/v1/operations/${id}/approvals`).send({ response });
    assert.equal(answer.status, 200, answer.text);
    return answer.body;
  }

  const version = (page: Page, number: number) => page.locator(`[data-testid="master-key-versions"] tr[data-version="${number}"]`);

  before(async () => {
    // One row per batch, paced: the rewrap of a handful of rows takes about a second, not milliseconds. The clock is
    // today's: the browser drops a session cookie whose expiry, on the default test clock, has passed.
    const minute = 60_000;
    kh = await startTestKeyhold({
      admin: true,
      clock: new ManualClock(new Date(Math.floor(Date.now() / minute) * minute)),
      masterKeyRewrap: { batchSize: 1, paceMs: 150, intervalMs: 60_000 },
    });
    bob = await enrolAdmin(kh, 'bob', setupTokenOf(kh));
    olga = await inviteAdmin(kh, bob, 'olga', 'operator');
    for (const name of ['payments', 'orders', 'ledger']) await kh.http().post('/v1/keys').send({ name, algorithm: 'aes-256-gcm' }).expect(201);

    browser = await launchChromium();
    alice = (await openDevice(browser)).page;
    const invitation = await kh.adminHttp(bob.session).post('/api/v1/admins/invitations').send({ role: 'admin' }).expect(201);
    await enrolThroughInvitation(alice, invitation.body.link, 'alice');
    // Raised once alice is admin: with a quorum of 2 no single admin may make another admin.
    const quorum = await kh.adminHttp(bob.session).post('/api/v1/operations').send({ kind: 'set-quorum', approvals: 2 }).expect(201);
    assert.equal((await approveAsBob(quorum.body.operation.id)).status, 'executed');
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await kh?.stop();
  });

  it('an operator reads the versions, without rotate or retire', async () => {
    const { context, page } = await openDevice(browser);
    const [name, value] = olga.session.cookie.split('=');
    await context.addCookies([{ name, value, url: kh.adminOrigin, secure: true, httpOnly: true, sameSite: 'Strict' }]);
    await page.goto(`${kh.adminOrigin}/keys`, { waitUntil: 'domcontentloaded' });
    await page.getByRole('navigation', { name: 'Screens' }).getByRole('link', { name: 'Master key' }).click();
    await version(page, 1).waitFor(WAIT);
    assert.match(await page.getByTestId('read-only').innerText(), /Only admins rotate the master key/);
    assert.equal(await page.getByRole('button', { name: 'Rotate…' }).count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Retire…' }).count(), 0);
    await context.close();
  });

  it('alice rotates (bob approves), the page follows the rewrap to the end, then v1 is retired (bob approves)', async () => {
    await alice.getByRole('navigation', { name: 'Screens' }).getByRole('link', { name: 'Master key' }).click();
    await alice.getByRole('heading', { name: 'Master key' }).waitFor(WAIT);
    const v1 = version(alice, 1);
    await v1.waitFor(WAIT);
    assert.equal(await v1.getAttribute('data-state'), 'active');
    assert.equal(await v1.getByTestId('version-state').innerText(), 'Primary');
    assert.match(await v1.innerText(), /v1\s*root of trust/);
    // 3 key versions, the service CA's key, the audit trail's two keys.
    assert.deepEqual(await v1.locator('td.num').allInnerTexts(), ['3', '1', '2']);
    assert.equal(await v1.getByRole('button', { name: 'Retire…' }).isDisabled(), true);
    assert.match(await v1.getByTestId('retire-reason').innerText(), /The primary version: rotate first/);
    await alice.locator('[data-testid="rewrap"] [data-state="done"]').getByText('Nothing to rewrap: everything is under v1.').waitFor(WAIT);

    // The rotation: a request that waits for a second admin.
    await alice.getByRole('button', { name: 'Rotate…' }).click();
    const form = alice.getByTestId('rotate-master-key');
    assert.match(await form.innerText(), /sensitive operation[\s\S]*runs once 2 administrators approved it/);
    await screenshot(alice, 'master-key-rotate-form');
    await form.getByRole('button', { name: 'Request rotation' }).click();
    const rotation = alice.getByTestId('requested-operation').filter({ hasText: 'Rotation:' });
    await rotation.filter({ hasText: 'Waiting for 1 more approval (1 of 2)' }).waitFor(WAIT);
    const rotationId = (await rotation.getAttribute('data-operation')) ?? '';
    assert.equal(await rotation.getByRole('link', { name: 'Approvals' }).getAttribute('href'), `/approvals?operation=${rotationId}`);
    assert.equal(await form.count(), 0, 'the form closes once the request is made');
    assert.equal((await kh.adminHttp(bob.session).get('/api/v1/master-key').expect(200)).body.currentVersion, 1, 'nothing happens on one approval');

    assert.equal((await approveAsBob(rotationId)).status, 'executed');
    await rotation.filter({ hasText: 'Rotation: Approved and done.' }).waitFor(WAIT);
    await alice.locator('[data-testid="master-key-versions"] tr[data-version="2"][data-state="active"]').waitFor(WAIT);
    assert.equal(await version(alice, 2).getByTestId('version-state').innerText(), 'Primary');
    assert.equal(await v1.getAttribute('data-state'), 'retiring');
    assert.equal(await v1.getByTestId('version-state').innerText(), 'Retiring');
    assert.match(await v1.getByTestId('retire-reason').innerText(), /Still wraps 3 key versions, 1 service CA key, 2 audit keys: wait for the rewrap/);
    const rewrap = alice.getByTestId('rewrap');
    await rewrap.locator('[data-state="waiting"]').waitFor(WAIT);
    assert.match(await rewrap.innerText(), /6 left under older versions[\s\S]*0 of 6 under v2/);
    await screenshot(alice, 'master-key-rotated-desktop');
    await alice.setViewportSize(NARROW);
    await screenshot(alice, 'master-key-rotated-narrow');
    assert.equal(await horizontalOverflow(alice), 0);
    await alice.setViewportSize(DESKTOP);

    // The rewrap (test servers run it by hand); the page keeps polling until it is done, then stops.
    const statusReads: string[] = [];
    alice.on('request', (request) => {
      if (request.method() === 'GET' && new URL(request.url()).pathname === '/api/v1/master-key') statusReads.push(request.url());
    });
    const pass = kh.server.masterKey.rewrap.runOnce();
    await rewrap.locator('[data-state="done"]').getByText('Done: everything is under v2.').waitFor(WAIT);
    await pass;
    assert.match(await rewrap.getByTestId('rewrap-last-pass').innerText(), /6 rewrapped/);
    assert.deepEqual(await v1.locator('td.num').allInnerTexts(), ['0', '0', '0']);
    assert.deepEqual(await version(alice, 2).locator('td.num').allInnerTexts(), ['3', '1', '2']);
    const readsWhenDone = statusReads.length;
    assert.ok(readsWhenDone >= 1, 'the page polled the status while the rewrap ran');
    await alice.waitForTimeout(POLL_MS + 1_000);
    assert.equal(statusReads.length, readsWhenDone, 'no polling once the rewrap is done and nothing waits for approval');

    // Retiring v1, now that nothing uses it: also an approval.
    assert.equal(await v1.getByTestId('retire-reason').count(), 0);
    await v1.getByRole('button', { name: 'Retire…' }).click();
    await v1.getByRole('button', { name: 'Request retirement' }).click();
    const retirement = alice.getByTestId('requested-operation').filter({ hasText: 'Retirement of v1:' });
    await retirement.filter({ hasText: 'Waiting for 1 more approval (1 of 2)' }).waitFor(WAIT);
    await v1.getByRole('link', { name: 'waiting for approval' }).waitFor(WAIT);
    const retirementId = (await retirement.getAttribute('data-operation')) ?? '';
    assert.equal((await approveAsBob(retirementId)).status, 'executed');
    await alice.locator('[data-testid="master-key-versions"] tr[data-version="1"][data-state="retired"]').waitFor(WAIT);
    await retirement.filter({ hasText: 'Retirement of v1: Approved and done.' }).waitFor(WAIT);
    assert.equal(await v1.getByTestId('version-state').innerText(), 'Retired');
    assert.equal(await v1.getByRole('button').count(), 0, 'nothing to do with a retired version');
    const status = (await kh.adminHttp(bob.session).get('/api/v1/master-key').expect(200)).body;
    assert.deepEqual(
      status.versions.map((entry: { version: number; state: string }) => [entry.version, entry.state]),
      [
        [1, 'retired'],
        [2, 'active'],
      ],
    );
    await screenshot(alice, 'master-key-desktop');

    await alice.setViewportSize(NARROW);
    await alice.reload({ waitUntil: 'domcontentloaded' });
    await version(alice, 1).waitFor(WAIT);
    await screenshot(alice, 'master-key-narrow');
    assert.equal(await horizontalOverflow(alice), 0);
    await alice.setViewportSize(DESKTOP);
  });

  it('a rewrap that leaves only damaged rows behind: the page says so and stops polling', async () => {
    await alice.getByRole('button', { name: 'Rotate…' }).click();
    await alice.getByTestId('rotate-master-key').getByRole('button', { name: 'Request rotation' }).click();
    const rotation = alice.getByTestId('requested-operation').filter({ hasText: 'Rotation:' }).filter({ hasText: 'Waiting for 1 more approval' });
    await rotation.waitFor(WAIT);
    assert.equal((await approveAsBob((await rotation.getAttribute('data-operation')) ?? '')).status, 'executed');
    await alice.locator('[data-testid="master-key-versions"] tr[data-version="3"][data-state="active"]').waitFor(WAIT);
    // One key version's stored material altered in the database: the rewrap cannot open it, and leaves it under v2.
    await kh.dataSource.query(`
      UPDATE keyhold_key_versions v SET wrapped_material = overlay(wrapped_material placing '\\xff'::bytea from 40 for 1)
        FROM keyhold_keys k WHERE k.id = v.key_id AND k.name = 'ledger' AND v.version = 1`);

    const statusReads: string[] = [];
    alice.on('request', (request) => {
      if (request.method() === 'GET' && new URL(request.url()).pathname === '/api/v1/master-key') statusReads.push(request.url());
    });
    const rewrap = alice.getByTestId('rewrap');
    await kh.server.masterKey.rewrap.runOnce();
    await rewrap.locator('[data-state="stuck"]').waitFor(WAIT);
    assert.match(await rewrap.getByTestId('rewrap-state').innerText(), /Stopped: 1 key version left under older versions failed its integrity check/);
    assert.match(await rewrap.getByTestId('rewrap-last-pass').innerText(), /5 rewrapped, 1 damaged/);
    assert.match(await version(alice, 2).getByTestId('retire-reason').innerText(), /Still wraps 1 key version/);
    const readsWhenStuck = statusReads.length;
    await alice.waitForTimeout(5_000 + 1_000);
    assert.equal(statusReads.length, readsWhenStuck, 'no polling once only damaged rows are left');
    await rewrap.getByRole('button', { name: 'Check again' }).click();
    await alice.waitForTimeout(500);
    assert.equal(statusReads.length, readsWhenStuck + 1, 'Check again reads the status once');
    await screenshot(alice, 'master-key-rewrap-stuck');
  });
});
