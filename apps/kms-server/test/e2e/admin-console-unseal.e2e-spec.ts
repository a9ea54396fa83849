import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { SealState } from '../../src/seal/seal-state';
import { readShamirSealFile } from '../../src/seal/shamir-seal';
import { WAIT, browserSkip, launchChromium, openDevice, screenshot } from '../support/test-browser';
import { kmsctl } from '../support/kmsctl';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

describe('admin console in Chromium: unsealing with Shamir shares', { skip: browserSkip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-unseal-console-'));
  let shares: string[];
  let kh: TestKeyhold;
  let browser: Browser;

  before(async () => {
    const init = await kmsctl(['init', '--shares', '5', '--threshold', '3', '--out', dir]);
    assert.equal(init.code, 0, init.stderr);
    shares = [...init.stdout.matchAll(/^share \d of 5: (khs1-\S+)$/gm)].map((match) => match[1]);
    assert.equal(shares.length, 5, init.stdout);
    const file = readShamirSealFile(join(dir, 'master-key.shamir.json'));
    kh = await startTestKeyhold({ admin: true, seal: { state: new SealState('shamir', null), shamir: file } });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await kh?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('says Keyhold is sealed on the sign-in page, takes shares one by one, refuses a wrong one, and unseals at the threshold', async () => {
    const { page, context } = await openDevice(browser);
    const origin = kh.adminOrigin;
    await page.goto(`${origin}/sign-in`, { waitUntil: 'domcontentloaded' });
    await page.getByTestId('sealed-notice').waitFor(WAIT);
    await page.getByRole('link', { name: 'Unseal it' }).click();
    await page.getByRole('heading', { name: 'Unseal Keyhold' }).waitFor(WAIT);
    assert.match(await page.getByTestId('unseal-progress').innerText(), /0 of 3/);

    const share = page.getByLabel('Your unseal share');
    await share.fill(shares[0]);
    await page.getByRole('button', { name: 'Submit share' }).click();
    await page.getByText('Share accepted: 1 of 3.').waitFor(WAIT);
    assert.equal(await share.inputValue(), '', 'the share leaves the page once sent');
    assert.equal(await share.getAttribute('type'), 'password');

    await share.fill(shares[0]);
    await page.getByRole('button', { name: 'Submit share' }).click();
    await page.getByRole('alert').waitFor(WAIT);
    assert.match(await page.getByRole('alert').innerText(), /already/i);
    await share.fill('khs1-not-a-share');
    await page.getByRole('button', { name: 'Submit share' }).click();
    await page.getByRole('alert').getByText(/share/i).waitFor(WAIT);
    assert.match(await page.getByTestId('unseal-progress').innerText(), /1 of 3/);
    await screenshot(page, 'unseal');
    assert.equal((await kh.http().get('/v1/health')).status, 503, 'still sealed');

    for (const next of [shares[3], shares[4]]) {
      await share.fill(next);
      await page.getByRole('button', { name: 'Submit share' }).click();
      await page.getByRole('button', { name: 'Submit share' }).or(page.getByText('Keyhold is unsealed: keys work.')).first().waitFor(WAIT);
    }
    await page.getByText('Keyhold is unsealed: keys work.').waitFor(WAIT);
    assert.equal((await kh.http().get('/v1/health')).status, 200);
    await kh.http().post('/v1/keys').send({ name: 'after-unseal', algorithm: 'aes-256-gcm' }).expect(201);
    const stored = await page.evaluate<string>('JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage } })');
    for (const used of shares) assert.ok(!stored.includes(used), 'no share in browser storage');
    await context.close();
  });
});
