import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { ManualClock } from '@keyhold/key-lifecycle';
import { type TestAdmin, enrolAdmin, setupTokenOf, signIn } from '../support/test-admins';
import { WAIT, browserSkip, enrolThroughInvitation, launchChromium, openDevice, screenshot } from '../support/test-browser';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

describe('admin console in Chromium: audit retention', { skip: browserSkip }, () => {
  let kh: TestKeyhold;
  let browser: Browser;
  let bob: TestAdmin;
  let alice: Page;
  const archiveDir = mkdtempSync(join(tmpdir(), 'keyhold-console-archive-'));

  const retention = () => alice.getByTestId('audit-retention');
  const openAudit = async () => {
    await alice.goto(`${kh.adminOrigin}/audit`, { waitUntil: 'domcontentloaded' });
    await retention().waitFor(WAIT);
  };

  before(async () => {
    // Today's clock: the browser keeps the session cookie only while its expiry (set on the server's clock) lies ahead.
    const minute = 60_000;
    kh = await startTestKeyhold({
      admin: true,
      clock: new ManualClock(new Date(Math.floor(Date.now() / minute) * minute)),
      audit: { checkpoints: { intervalMs: 0, everyRecords: 0 }, minRetentionDays: 1, archiveDir },
    });
    bob = await enrolAdmin(kh, 'bob', setupTokenOf(kh));
    await kh.http().post('/v1/keys').send({ name: 'kept', algorithm: 'aes-256-gcm' }).expect(201);
    for (let i = 0; i < 5; i += 1) await kh.http().post('/v1/keys/kept/encrypt').send({ plaintext: 'aGVsbG8=' }).expect(200);

    // alice enrols in the browser: her passkey is the page's, and signs her requests.
    browser = await launchChromium();
    alice = (await openDevice(browser)).page;
    const invitation = await kh.adminHttp(bob.session).post('/api/v1/admins/invitations').send({ role: 'admin' }).expect(201);
    await enrolThroughInvitation(alice, invitation.body.link, 'alice');
  });
  after(async () => {
    await browser?.close().catch(() => undefined);
    await kh?.stop();
    rmSync(archiveDir, { recursive: true, force: true });
  });

  it('an admin prunes through a checkpoint once it is old enough; a prune of records that do not verify fails with the reason', async () => {
    const signed = await kh.adminHttp(bob.session).post('/api/v1/audit/checkpoints').expect(200);
    const through = signed.body.checkpoint.sequence as number;
    await openAudit();
    assert.match(await alice.getByTestId('audit-chain-start').innerText(), /Nothing has been pruned: the chain starts at #1\./);
    assert.match(await retention().innerText(), /Records are kept at least 1 day:[\s\S]*No checkpoint is old enough to prune through yet\./);
    assert.equal(await retention().getByRole('button', { name: 'Request prune' }).count(), 0);
    assert.match(await alice.getByTestId('audit-archiving').innerText(), /Each prune first archives the records it removes in the server's archive folder \(KEYHOLD_AUDIT_ARCHIVE_DIR\)/);

    // Two days on, alice's session has lapsed: the console sends her to sign in, and back.
    kh.clock.advanceDays(2);
    await alice.reload({ waitUntil: 'domcontentloaded' });
    await alice.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await retention().getByLabel('Prune through checkpoint').waitFor(WAIT);

    // A record altered in the range: the approved prune fails, says why, and removes nothing.
    await kh.dataSource.query(`UPDATE keyhold_audit_records SET outcome = 'refused' WHERE sequence = 3`);
    await retention().getByLabel('Prune through checkpoint').selectOption(String(through));
    await retention().getByRole('button', { name: 'Request prune' }).click();
    const outcome = retention().getByTestId('requested-operation');
    await outcome.filter({ hasText: /Approved, but it failed: the records to prune do not verify \(record #3 was altered/ }).waitFor(WAIT);
    await kh.dataSource.query(`UPDATE keyhold_audit_records SET outcome = 'success' WHERE sequence = 3`);

    await retention().getByLabel('Prune through checkpoint').selectOption(String(through));
    await screenshot(alice, 'audit-retention-request');
    await retention().getByRole('button', { name: 'Request prune' }).click();
    await outcome.filter({ hasText: `Prune through #${through}: Approved and done.` }).waitFor(WAIT);
    assert.equal(await outcome.getAttribute('data-status'), 'executed');
    const archive = `keyhold-audit-1-${through}.jsonl.gz`;
    assert.match(await retention().getByTestId('prune-archive').innerText(), new RegExp(`^Archived first as ${archive.replace(/\./g, '\\.')}: ${through} records, \\d+ bytes, SHA-256 [0-9a-f]{64}\\.$`));
    assert.ok(existsSync(join(archiveDir, archive)));
    const [{ first }] = await kh.dataSource.query('SELECT min(sequence)::int AS first FROM keyhold_audit_records');
    assert.equal(first, through + 1);
    await alice.getByTestId('audit-chain-start').getByText(`The chain starts at #${through + 1}: records through #${through} were pruned on`).waitFor(WAIT);
    assert.equal(await retention().getByLabel('Prune through checkpoint').count(), 0, 'nothing left old enough to offer');
    await screenshot(alice, 'audit-retention-done');
  });

  it('an admin sets a standing retention, and ends it', async () => {
    bob.session = await signIn(kh, bob.authenticator); // the clock moved on two days
    await openAudit();
    assert.match(await alice.getByTestId('audit-retention-policy').innerText(), /Keyhold prunes only by request\./);
    await retention().getByLabel('Keep records for (days)').fill('3');
    await retention().getByRole('button', { name: 'Request retention' }).click();
    await retention().getByTestId('requested-operation').filter({ hasText: 'Keep records for 3 days: Approved and done.' }).waitFor(WAIT);
    await alice.getByTestId('audit-retention-policy').getByText(/Keyhold prunes by itself, hourly, the records older than 3 days/).waitFor(WAIT);
    assert.equal((await kh.adminHttp(bob.session).get('/api/v1/audit/retention').expect(200)).body.policyDays, 3);
    await screenshot(alice, 'audit-retention-policy');
    await retention().getByRole('button', { name: 'Stop pruning by itself' }).click();
    await retention().getByTestId('requested-operation').filter({ hasText: 'Stop pruning by itself: Approved and done.' }).waitFor(WAIT);
    await alice.getByTestId('audit-retention-policy').getByText('Keyhold prunes only by request.').waitFor(WAIT);
  });

  it('an auditor sees where the chain starts, without the request', async () => {
    const invitation = await kh.adminHttp(bob.session).post('/api/v1/admins/invitations').send({ role: 'auditor', name: 'audrey' }).expect(201);
    const auditor = await enrolAdmin(kh, 'audrey', invitation.body.token);
    const { context, page } = await openDevice(browser);
    const [name, value] = auditor.session.cookie.split('=');
    await context.addCookies([{ name, value, url: kh.adminOrigin, secure: true, httpOnly: true, sameSite: 'Strict' }]);
    await page.goto(`${kh.adminOrigin}/audit`, { waitUntil: 'domcontentloaded' });
    await page.getByTestId('audit-chain-start').getByText(/The chain starts at #\d+/).waitFor(WAIT);
    assert.equal(await page.getByRole('button', { name: 'Request prune' }).count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Request retention' }).count(), 0);
    await context.close();
  });
});
