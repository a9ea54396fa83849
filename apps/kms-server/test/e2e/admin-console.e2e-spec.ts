import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ManualClock } from '@keyhold/key-lifecycle';
import { ADMIN_CONSOLE_CSP, DEFAULT_ADMIN_CONSOLE_DIR } from '../../src/admin/admin-console';
import { NARROW, WAIT, browserSkip, horizontalOverflow, launchChromium, openDevice, screenshot } from '../support/test-browser';
import { type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

// The admin console in a real browser (test/support/test-browser.ts): first setup, sign-in, keys. Screenshots go to
// test-output/screenshots/ (git-ignored). admin-console-team.e2e-spec.ts covers invitations, approvals, services, recovery.

describe('admin console in Chromium: setup, sign-in, keys', { skip: browserSkip }, () => {
  let kh: TestKeyhold;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;

  const shot = (name: string) => screenshot(page, name);
  const path = () => new URL(page.url()).pathname;

  before(async () => {
    assert.ok(existsSync(join(DEFAULT_ADMIN_CONSOLE_DIR, 'index.html')), 'build the console first: npm run build');
    // The browser keeps the session cookie only until its Expires, in real time: the server's clock starts now.
    const minute = 60_000;
    kh = await startTestKeyhold({ admin: true, clock: new ManualClock(new Date(Math.floor(Date.now() / minute) * minute)) });
    browser = await launchChromium();
    ({ context, page } = await openDevice(browser));
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await kh?.stop();
  });

  it('serves the console at / with a strict CSP, the SPA fallback, and leaves the API 404s alone', async () => {
    const index = await kh.adminHttp().get('/').expect(200);
    assert.match(String(index.headers['content-type']), /^text\/html/);
    assert.equal(index.headers['content-security-policy'], ADMIN_CONSOLE_CSP);
    assert.match(ADMIN_CONSOLE_CSP, /script-src 'self'/);
    assert.match(ADMIN_CONSOLE_CSP, /frame-ancestors 'none'/);
    assert.match(index.text, /<div id="root">/);
    const deep = await kh.adminHttp().get('/keys/some-key').expect(200);
    assert.equal(deep.text, index.text);
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(index.text)?.[1];
    assert.ok(asset);
    const script = await kh.adminHttp().get(asset).expect(200);
    assert.match(String(script.headers['content-type']), /^text\/javascript/);
    await kh.adminHttp().get('/assets/missing-0000.js').expect(404);
    const api = await kh.adminHttp().get('/api/v1/no-such-thing').expect(404);
    assert.equal(api.body.error.code, 'NOT_FOUND');
    await kh.adminHttp().get('/api/v1/session').expect(401);
    const docs = await kh.adminHttp().get('/docs').expect(200);
    assert.equal(docs.body.openapi, '3.1.0');
    const traversal = await kh.adminHttp().get('/%2e%2e/%2e%2e/package.json');
    assert.ok(!traversal.text.includes('"workspaces"'), 'no file outside the console is served');
  });

  it('first-admin setup: the printed link, a passkey, the recovery codes shown once', async () => {
    const link = kh.server.admin?.setupLink;
    assert.ok(link);
    const response = await page.goto(link, { waitUntil: 'domcontentloaded' });
    assert.equal(response?.headers()['content-security-policy'], ADMIN_CONSOLE_CSP);
    await page.getByRole('heading', { name: 'Set up Keyhold' }).waitFor(WAIT);
    assert.equal(new URL(page.url()).hash, '', 'the token is wiped from the address bar');
    await page.getByLabel('Your name').fill('alice');
    await page.getByRole('button', { name: 'Create passkey' }).click();
    const codes = page.getByTestId('recovery-codes');
    await codes.waitFor(WAIT);
    assert.equal(await codes.locator('li').count(), 10);
    await shot('setup-recovery-codes');
    const proceed = page.getByRole('button', { name: 'Continue to Keyhold' });
    assert.equal(await proceed.isDisabled(), true, 'not before "I saved them"');
    await page.getByLabel('I saved them').check();
    await proceed.click();
    await page.getByRole('heading', { name: 'Keys' }).waitFor(WAIT);
    assert.equal(path(), '/keys');
    await page.getByText('No keys yet.').waitFor(WAIT);
    assert.match(await page.getByTestId('who').innerText(), /alice · admin/);
  });

  it('signs out, sends a signed-out visitor to sign-in, and signs in again with the passkey', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in with a passkey' }).waitFor(WAIT);
    assert.equal(path(), '/sign-in');
    await page.goto(`${kh.adminOrigin}/keys`, { waitUntil: 'domcontentloaded' });
    await page.waitForURL((url) => url.pathname === '/sign-in', WAIT);
    assert.equal(new URL(page.url()).searchParams.get('next'), '/keys');
    await shot('sign-in');
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await page.getByRole('heading', { name: 'Keys' }).waitFor(WAIT);
    assert.equal(path(), '/keys');
  });

  it('creates keys and lists them with usage; search filters the list', async () => {
    for (const name of ['billing-ledger', 'customer-pii', 'session-tokens']) {
      await kh.http().post('/v1/keys').send({ name, algorithm: 'aes-256-gcm', rotationPeriodDays: 90, description: `${name.replace('-', ' ')} data` }).expect(201);
    }
    for (let i = 0; i < 3; i += 1) await kh.http().post('/v1/keys/customer-pii/encrypt').send({ plaintext: 'eA==' }).expect(200);
    await kh.server.usage.flush();

    await page.getByRole('button', { name: 'New key' }).click();
    await page.locator('input[name="key-name"]').fill('payments-db');
    await page.locator('input[name="description"]').fill('Payments database column encryption');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.waitForURL((url) => url.pathname === '/keys/payments-db', WAIT);
    await page.getByTestId('primary-version').waitFor(WAIT);
    assert.equal(await page.getByTestId('primary-version').innerText(), 'v1');

    await page.getByRole('link', { name: 'Keys', exact: true }).first().click();
    const table = page.getByTestId('keys-table');
    await table.locator('tr[data-key="payments-db"]').waitFor(WAIT);
    assert.equal(await table.locator('tbody tr').count(), 4);
    assert.match(await table.locator('tr[data-key="customer-pii"]').innerText(), /aes-256-gcm[\s\S]*Enabled[\s\S]*v1[\s\S]*3/);
    await shot('keys-desktop');

    await page.getByLabel('Search keys').fill('pay');
    await table.locator('tbody tr').first().waitFor(WAIT);
    await page.waitForFunction(`document.querySelectorAll('[data-testid="keys-table"] tbody tr').length === 1`, undefined, WAIT);
    await page.getByLabel('Search keys').fill('');

    // The API's own error message is shown: a second key of the same name.
    await page.getByRole('button', { name: 'New key' }).click();
    await page.locator('input[name="key-name"]').fill('payments-db');
    await page.getByRole('button', { name: 'Create key' }).click();
    const error = page.getByRole('alert');
    await error.waitFor(WAIT);
    assert.match(await error.innerText(), /exist/i);
  });

  it('rotates a key and shows version 2', async () => {
    await page.goto(`${kh.adminOrigin}/keys/payments-db`, { waitUntil: 'domcontentloaded' });
    await page.getByRole('button', { name: 'Rotate now' }).click();
    await page.getByText('Rotated: version 2 is now primary.').waitFor(WAIT);
    assert.equal(await page.getByTestId('primary-version').innerText(), 'v2');
    const versions = page.getByTestId('versions-table');
    await versions.locator('tr[data-version="2"]').waitFor(WAIT);
    assert.match(await versions.locator('tr[data-version="2"]').innerText(), /primary/);
    assert.equal(await versions.locator('tbody tr').count(), 2);
    await shot('key-desktop');
  });

  it('schedules destruction only after the key name is typed, shows the date, and cancels it', async () => {
    await page.getByRole('button', { name: 'Schedule destruction…' }).click();
    await page.locator('input[name="pending-days"]').fill('7');
    assert.match(await page.getByTestId('destroy-date').innerText(), /Destroyed on \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/);
    const confirm = page.getByRole('button', { name: 'Schedule destruction', exact: true });
    assert.equal(await confirm.isDisabled(), true);
    await page.locator('input[name="confirm-name"]').fill('payments');
    assert.equal(await confirm.isDisabled(), true, 'a partial name does not confirm');
    await page.locator('input[name="confirm-name"]').fill('payments-db');
    await shot('key-schedule-destruction');
    await confirm.click();
    await page.getByTestId('destroy-at').waitFor(WAIT);
    const expected = new Date(kh.clock.now().getTime() + 7 * 24 * 3600 * 1000).toISOString().slice(0, 16).replace('T', ' ');
    assert.ok((await page.getByTestId('destroy-at').innerText()).includes(`${expected} UTC`), `destroyed on ${expected}`);
    assert.equal((await kh.adminHttp({}).get('/api/v1/keys/payments-db').expect(401)).status, 401);
    assert.equal((await kh.http().get('/v1/keys/payments-db').expect(200)).body.state, 'pending_destruction');

    await page.getByRole('button', { name: 'Cancel destruction' }).click();
    await page.getByText('Destruction cancelled').waitFor(WAIT);
    await page.getByRole('button', { name: 'Enable' }).click();
    await page.getByText('Enabled.', { exact: true }).waitFor(WAIT);
    assert.equal((await kh.http().get('/v1/keys/payments-db').expect(200)).body.state, 'enabled');
  });

  it('an expired session sends the user to sign-in and back to the same page', async () => {
    await context.clearCookies();
    await page.getByRole('button', { name: 'Rotate now' }).click();
    await page.waitForURL((url) => url.pathname === '/sign-in', WAIT);
    assert.equal(new URL(page.url()).searchParams.get('next'), '/keys/payments-db');
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await page.waitForURL((url) => url.pathname === '/keys/payments-db', WAIT);
    await page.getByTestId('primary-version').waitFor(WAIT);
    assert.equal(await page.getByTestId('primary-version').innerText(), 'v2', 'the rotation was not made without a session');
  });

  it('fits a 390px-wide screen', async () => {
    await page.setViewportSize(NARROW);
    await page.goto(`${kh.adminOrigin}/keys`, { waitUntil: 'domcontentloaded' });
    await page.getByTestId('keys-table').locator('tr[data-key="payments-db"]').waitFor(WAIT);
    const overflow = await horizontalOverflow(page);
    assert.ok(overflow <= 0, `no horizontal scrolling at 390px (${overflow}px)`);
    await shot('keys-narrow');
    await page.goto(`${kh.adminOrigin}/keys/payments-db`, { waitUntil: 'domcontentloaded' });
    await page.getByTestId('versions-table').waitFor(WAIT);
    await shot('key-narrow');
  });
});
