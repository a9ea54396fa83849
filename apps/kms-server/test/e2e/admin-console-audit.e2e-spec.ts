import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { holdAnExport } from '../support/held-export';
import { kmsctl } from '../support/kmsctl';
import { type TestAdmin, enrolAdmin, inviteAdmin, setupTokenOf } from '../support/test-admins';
import { NARROW, WAIT, browserSkip, launchChromium, openDevice, screenshot } from '../support/test-browser';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

describe('admin console in Chromium: the audit screen', { skip: browserSkip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-console-audit-'));
  let kh: TestKeyhold;
  let browser: Browser;
  let alice: TestAdmin;
  let olive: TestAdmin;

  /** A browser device signed in with an admin's session (made through the real API). */
  async function signedInDevice(admin: TestAdmin, viewport?: typeof NARROW) {
    const device = await openDevice(browser, viewport);
    const [name, value] = admin.session.cookie.split('=');
    await device.context.addCookies([{ name, value, url: kh.adminOrigin, secure: true, httpOnly: true, sameSite: 'Strict' }]);
    return device;
  }

  before(async () => {
    kh = await startTestKeyhold({ admin: true });
    alice = await enrolAdmin(kh, 'alice', setupTokenOf(kh));
    olive = await inviteAdmin(kh, alice, 'olive', 'operator');
    browser = await launchChromium();
    await kh.http().post('/v1/keys').send({ name: 'audited', algorithm: 'aes-256-gcm' }).expect(201);
    await kh.http().post('/v1/keys/audited/encrypt').send({ plaintext: 'aGVsbG8=' }).expect(200);
    await kh.http().post('/v1/keys/audited/encrypt').send({ plaintext: 'aGVsbG8=' }).expect(200);
    await kh.http().post('/v1/keys/audited/decrypt').send({ ciphertext: 'kh1:audited:1:AAAA' }).expect(422);
  });
  after(async () => {
    await browser?.close();
    await kh?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists the latest records, filters by key and outcome, and exports what kmsctl verifies offline', async () => {
    const { page, context } = await signedInDevice(alice);
    await page.goto(`${kh.adminOrigin}/keys`, { waitUntil: 'domcontentloaded' });
    await page.getByRole('navigation').getByRole('link', { name: 'Audit', exact: true }).click();
    await page.getByRole('heading', { name: 'Audit' }).waitFor(WAIT);
    const rows = page.getByTestId('audit-records').locator('tbody tr');
    await rows.first().waitFor(WAIT);
    const operations = await rows.locator('td[data-label="Operation"]').allInnerTexts();
    assert.ok(operations.includes('encrypt'), operations.join(', '));
    assert.ok(operations.includes('keys.create'), operations.join(', '));

    const filters = page.getByTestId('audit-filters');
    await filters.getByLabel('Key').fill('audited');
    await filters.getByLabel('Outcome').selectOption('refused');
    await filters.getByRole('button', { name: 'Apply' }).click();
    await page.getByTestId('audit-records').getByRole('heading', { name: 'Records (1)' }).waitFor(WAIT);
    assert.equal(await rows.count(), 1);
    assert.equal(await rows.first().getAttribute('data-outcome'), 'refused');
    assert.match(await rows.first().innerText(), /decrypt[\s\S]*INVALID_CIPHERTEXT/);
    await screenshot(page, 'audit-desktop');

    await filters.getByRole('button', { name: 'Clear' }).click();
    await filters.getByRole('button', { name: 'Apply' }).click();
    await page.getByTestId('audit-records').getByRole('heading', { name: /Records \(\d{2,}\)/ }).waitFor(WAIT);
    const downloaded = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Export JSON Lines' }).click();
    const exportFile = join(dir, 'export.jsonl');
    await (await downloaded).saveAs(exportFile);
    const lines = readFileSync(exportFile, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { type: string });
    assert.equal(lines[0].type, 'header');
    assert.ok(lines.filter((line) => line.type === 'record').length >= 6);

    const pem = await page.locator('pre.pem').innerText();
    writeFileSync(join(dir, 'audit.pem'), `${pem.trim()}\n`);
    const verified = await kmsctl(['audit', 'verify', '--file', exportFile, '--public-key', join(dir, 'audit.pem')]);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    await context.close();
  });

  it('is not offered to an operator, and fits a narrow screen for an admin', async () => {
    const operator = await signedInDevice(olive);
    await operator.page.goto(`${kh.adminOrigin}/keys`, { waitUntil: 'domcontentloaded' });
    await operator.page.getByRole('link', { name: 'Keys' }).waitFor(WAIT);
    assert.match(await operator.page.getByTestId('who').innerText(), /olive · operator/);
    assert.equal(await operator.page.getByRole('navigation').getByRole('link', { name: 'Audit', exact: true }).count(), 0);
    await operator.context.close();

    const narrow = await signedInDevice(alice, NARROW);
    await narrow.page.goto(`${kh.adminOrigin}/audit`, { waitUntil: 'domcontentloaded' });
    await narrow.page.getByTestId('audit-records').locator('tbody tr').first().waitFor(WAIT);
    await screenshot(narrow.page, 'audit-narrow');
    assert.equal(await narrow.page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth'), 0);
    await narrow.context.close();
  });

  it('shows why an export was refused instead of a failed download (here: another export is being built)', async () => {
    const { page, context } = await signedInDevice(alice);
    await page.goto(`${kh.adminOrigin}/audit`, { waitUntil: 'domcontentloaded' });
    await page.getByTestId('audit-records').locator('tbody tr').first().waitFor(WAIT);
    // Another export holds this instance's one export place.
    const held = await holdAnExport(kh, alice.session);
    let heldStatus: number;
    try {
      let downloads = 0;
      page.on('download', () => (downloads += 1));
      await page.getByRole('button', { name: 'Export JSON Lines' }).click();
      await page.getByText(/another audit export is being built on this instance; retry in 5 s/).waitFor(WAIT);
      assert.equal(downloads, 0, 'nothing was saved');
    } finally {
      heldStatus = await held.release();
    }
    assert.equal(heldStatus, 200);
    await context.close();
  });

  it('shows a refused checkpoint: the chain since the last one did not verify', async () => {
    await kh.server.audit.checkpointer.checkpoint();
    const encrypted = await kh.http().post('/v1/keys/audited/encrypt').send({ plaintext: 'aGVsbG8=' }).expect(200);
    const target = Number(encrypted.headers['keyhold-audit-sequence']);
    await kh.dataSource.query(`UPDATE keyhold_audit_records SET outcome = 'refused' WHERE sequence = $1`, [target]);
    await assert.rejects(kh.server.audit.checkpointer.checkpoint(), /checkpoint refused/);
    const { page, context } = await signedInDevice(alice);
    await page.goto(`${kh.adminOrigin}/audit`, { waitUntil: 'domcontentloaded' });
    const alert = page.getByTestId('checkpoint-refused');
    await alert.waitFor(WAIT);
    assert.match(await alert.innerText(), new RegExp(`refused to sign a checkpoint .*record #${target} was altered`, 's'));
    await context.close();
    await kh.dataSource.query(`UPDATE keyhold_audit_records SET outcome = 'success' WHERE sequence = $1`, [target]);
    assert.ok(await kh.server.audit.checkpointer.checkpoint(), 'signs again once restored');
  });
});
