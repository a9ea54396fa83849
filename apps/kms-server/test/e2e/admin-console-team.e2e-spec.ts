import 'reflect-metadata';
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import * as x509 from '@peculiar/x509';
import type { Browser, Locator, Page } from 'playwright-core';
import { ManualClock } from '@keyhold/key-lifecycle';
import { DESKTOP, NARROW, WAIT, browserSkip, horizontalOverflow, launchChromium, openDevice, screenshot } from '../support/test-browser';
import { type Credentials, type TestKeyhold, startTestKeyhold } from '../support/test-keyhold';

// The admin console as a team uses it, in Chromium: every person (and every new device) is a browser context with its own
// virtual passkey authenticator. Invitations, roles, a 2-of-2 approval, services (grants, certificates, revocation),
// rotation policy, one's own passkeys and recovery codes, recovery-code sign-in. Screenshots: test-output/screenshots/.

/** Polls a condition the browser cannot see (the service plane), until it holds or 60 s pass. */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + WAIT.timeout;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`never happened: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function downloaded(page: Page, button: Locator): Promise<{ name: string; text: string }> {
  const [download] = await Promise.all([page.waitForEvent('download', WAIT), button.click()]);
  return { name: download.suggestedFilename(), text: readFileSync(await download.path(), 'utf8') };
}

describe('admin console in Chromium: a team of administrators', { skip: browserSkip }, () => {
  let kh: TestKeyhold;
  let browser: Browser;
  let alice: Page;
  let bob: Page;
  let aliceCodes: string[] = [];

  const origin = () => kh.adminOrigin;

  before(async () => {
    const minute = 60_000;
    kh = await startTestKeyhold({ admin: true, clock: new ManualClock(new Date(Math.floor(Date.now() / minute) * minute)) });
    browser = await launchChromium();
    alice = (await openDevice(browser)).page;
    bob = (await openDevice(browser)).page;
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await kh?.stop();
  });

  it('alice sets Keyhold up and keeps her recovery codes', async () => {
    await alice.goto(kh.server.admin?.setupLink ?? '', { waitUntil: 'domcontentloaded' });
    await alice.getByLabel('Your name').fill('alice');
    await alice.getByRole('button', { name: 'Create passkey' }).click();
    await alice.getByTestId('recovery-codes').waitFor(WAIT);
    aliceCodes = (await alice.getByTestId('recovery-codes').locator('li').allInnerTexts()).map((code) => code.trim());
    assert.equal(aliceCodes.length, 10);
    await alice.getByLabel('I saved them').check();
    await alice.getByRole('button', { name: 'Continue to Keyhold' }).click();
    await alice.getByRole('heading', { name: 'Keys' }).waitFor(WAIT);
  });

  it('invites bob as an admin; bob accepts in his own browser with his own passkey; roles change what he sees', async () => {
    await alice.getByRole('navigation', { name: 'Screens' }).getByRole('link', { name: 'Admins' }).click();
    await alice.getByRole('button', { name: 'Invite' }).click();
    await alice.locator('select[name="invite-role"]').selectOption('admin');
    await alice.getByRole('button', { name: 'Create invitation link' }).click();
    const link = (await alice.getByTestId('invitation-link').innerText()).trim();
    assert.match(link, new RegExp(`^${origin()}/enrol#token=`));
    await screenshot(alice, 'admins-invitation');
    await alice.getByRole('button', { name: 'Done' }).click();
    assert.equal(await alice.getByTestId('invitation-link').count(), 0, 'the link is shown once');
    // It waits under Open invitations; one sent to the wrong person is revoked there.
    const invitations = alice.getByTestId('open-invitations');
    await invitations.locator('tr[data-invitation]', { hasText: 'alice' }).filter({ hasText: 'admin' }).waitFor(WAIT);
    await alice.getByRole('button', { name: 'Invite' }).click();
    await alice.locator('input[name="invite-name"]').fill('mallory');
    await alice.getByRole('button', { name: 'Create invitation link' }).click();
    await alice.getByRole('button', { name: 'Done' }).click();
    const wrong = invitations.locator('tr[data-invitation]', { hasText: 'mallory' });
    await wrong.getByRole('button', { name: 'Revoke the invitation of mallory…' }).click();
    await wrong.getByRole('button', { name: 'Revoke', exact: true }).click();
    await invitations.getByText('Invitation revoked: its link no longer works.').waitFor(WAIT);
    assert.equal(await wrong.count(), 0);
    assert.equal(await invitations.locator('tr[data-invitation]').count(), 1, 'bob’s invitation stays');

    await bob.goto(link, { waitUntil: 'domcontentloaded' });
    await bob.getByRole('heading', { name: 'Accept your invitation' }).waitFor(WAIT);
    assert.equal(new URL(bob.url()).hash, '', 'the token is wiped from the address bar');
    await bob.getByLabel('Your name').fill('bob');
    await bob.getByRole('button', { name: 'Create passkey' }).click();
    await bob.getByTestId('recovery-codes').waitFor(WAIT);
    assert.equal(await bob.getByTestId('recovery-codes').locator('li').count(), 10);
    await bob.getByLabel('I saved them').check();
    await bob.getByRole('button', { name: 'Continue to Keyhold' }).click();
    await bob.getByRole('heading', { name: 'Keys' }).waitFor(WAIT);
    assert.match(await bob.getByTestId('who').innerText(), /bob · admin/);

    // A used invitation does not work twice.
    const again = (await openDevice(browser)).page;
    await again.goto(link, { waitUntil: 'domcontentloaded' });
    await again.getByLabel('Your name').fill('mallory');
    await again.getByRole('button', { name: 'Create passkey' }).click();
    await again.getByRole('alert').waitFor(WAIT);
    assert.match(await again.getByRole('alert').innerText(), /already used/);
    await again.context().close();

    await alice.reload({ waitUntil: 'domcontentloaded' });
    const bobRow = alice.locator('tr[data-admin="bob"]');
    await bobRow.waitFor(WAIT);
    // Taking the admin role away is a sensitive operation: alice's passkey signs it (a quorum of one: done at once).
    await bobRow.getByLabel('Role of bob').selectOption('auditor');
    await alice.getByTestId('requested-operation').filter({ hasText: 'bob as auditor: Approved and done.' }).waitFor(WAIT);

    // An auditor's console reads only (and the server refuses changes anyway).
    await bob.goto(`${origin()}/keys`, { waitUntil: 'domcontentloaded' });
    await bob.getByTestId('who').filter({ hasText: 'bob · auditor' }).waitFor(WAIT);
    await bob.getByTestId('read-only').waitFor(WAIT);
    assert.match(await bob.getByTestId('read-only').innerText(), /Your role reads only/);
    assert.equal(await bob.getByRole('button', { name: 'New key' }).count(), 0);
    await bob.goto(`${origin()}/admins`, { waitUntil: 'domcontentloaded' });
    await bob.getByTestId('read-only').waitFor(WAIT);
    assert.equal(await bob.getByRole('button', { name: 'Invite' }).count(), 0);

    await bobRow.getByLabel('Role of bob').selectOption('admin');
    await alice.getByTestId('requested-operation').filter({ hasText: 'bob as admin: Approved and done.' }).waitFor(WAIT);
  });

  it('2-of-2: alice raises the quorum, requests to destroy a key now, bob approves with his passkey, the key is destroyed', async () => {
    await kh.http().post('/v1/keys').send({ name: 'doomed-now', algorithm: 'aes-256-gcm' }).expect(201);

    await alice.goto(`${origin()}/approvals`, { waitUntil: 'domcontentloaded' });
    await alice.getByTestId('quorum').waitFor(WAIT);
    assert.equal(await alice.getByTestId('quorum').innerText(), '1');
    await alice.getByLabel('Approvals required').fill('2');
    await alice.getByRole('button', { name: 'Request the change' }).click();
    await alice.getByText('Quorum of 2: Approved and done.').waitFor(WAIT);
    // A locator, not waitForFunction: a string predicate is eval'd in the page, which the console's CSP forbids
    // (it only passed when the first look, made outside the page's CSP, already saw the new quorum).
    await alice.locator('[data-testid="quorum"]', { hasText: /^2$/ }).waitFor(WAIT);

    await alice.goto(`${origin()}/keys/doomed-now`, { waitUntil: 'domcontentloaded' });
    await alice.getByRole('button', { name: 'Destroy now…' }).click();
    const request = alice.getByRole('button', { name: 'Request destruction now' });
    assert.equal(await request.isDisabled(), true, 'not before the key name is typed');
    await alice.locator('input[name="confirm-destroy-now"]').fill('doomed-now');
    await request.click();
    const requested = alice.getByTestId('requested-operation');
    await requested.waitFor(WAIT);
    assert.match(await requested.innerText(), /Waiting for 1 more approval \(1 of 2\)/);
    assert.equal((await kh.http().get('/v1/keys/doomed-now').expect(200)).body.state, 'enabled', 'nothing happens on one approval');

    await requested.getByRole('link', { name: 'Approvals' }).click();
    await alice.waitForURL((url) => url.pathname === '/approvals', WAIT);
    const mine = alice.locator('article.highlighted');
    await mine.waitFor(WAIT);
    assert.match(await mine.innerText(), /Destroy key doomed-now and all its versions now/);
    assert.match(await mine.getByTestId('approvers').innerText(), /alice .*1 of 2 needed/);
    assert.equal(await mine.getByRole('button', { name: 'You approved this' }).isDisabled(), true);
    await screenshot(alice, 'approvals-desktop');

    await bob.goto(`${origin()}/approvals`, { waitUntil: 'domcontentloaded' });
    await bob.locator('article[data-status="pending"]', { hasText: 'doomed-now' }).waitFor(WAIT);
    const theirs = bob.locator(`article[data-operation="${await bob.locator('article[data-status="pending"]', { hasText: 'doomed-now' }).getAttribute('data-operation')}"]`);
    assert.match(await theirs.innerText(), /Asked by\s+alice/);
    await theirs.getByText('Exact operation signed').click();
    const signed = JSON.parse(await theirs.locator('pre').innerText());
    assert.deepEqual(signed, { kind: 'destroy-key-now', key: 'doomed-now' });
    await theirs.getByRole('button', { name: 'Approve with passkey' }).click();
    await theirs.getByTestId('outcome').getByText('Approved and done.').waitFor(WAIT);
    assert.match(await theirs.getByTestId('approvers').innerText(), /alice .*bob .*2 of 2 needed/);
    assert.equal((await kh.http().get('/v1/keys/doomed-now').expect(200)).body.state, 'destroyed');

    await alice.goto(`${origin()}/keys/doomed-now`, { waitUntil: 'domcontentloaded' });
    await alice.locator('.page-title .badge-destroyed').waitFor(WAIT);
  });

  it('removing an admin goes through approvals; bob rejects his removal and stays', async () => {
    await alice.goto(`${origin()}/admins`, { waitUntil: 'domcontentloaded' });
    const bobRow = alice.locator('tr[data-admin="bob"]');
    await bobRow.getByRole('button', { name: 'Remove…' }).click();
    await bobRow.getByRole('button', { name: 'Request removal' }).click();
    const requested = alice.getByTestId('requested-operation');
    await requested.waitFor(WAIT);
    assert.match(await requested.innerText(), /Waiting for 1 more approval/);

    await bob.goto(`${origin()}/approvals`, { waitUntil: 'domcontentloaded' });
    await bob.locator('article[data-status="pending"]', { hasText: 'Remove administrator bob' }).waitFor(WAIT);
    const removal = bob.locator(`article[data-operation="${await bob.locator('article[data-status="pending"]', { hasText: 'Remove administrator bob' }).getAttribute('data-operation')}"]`);
    await removal.getByRole('button', { name: 'Reject' }).click();
    await removal.getByTestId('outcome').getByText('Rejected: it will not run.').waitFor(WAIT);
    await alice.reload({ waitUntil: 'domcontentloaded' });
    await alice.locator('tr[data-admin="bob"]').waitFor(WAIT);
  });

  it('an operation a crash left executing: running, then, past the grace period, marked interrupted by bob', async () => {
    await kh.http().post('/v1/keys').send({ name: 'cut-short', algorithm: 'aes-256-gcm' }).expect(201);
    await alice.goto(`${origin()}/keys/cut-short`, { waitUntil: 'domcontentloaded' });
    await alice.getByRole('button', { name: 'Destroy now…' }).click();
    await alice.locator('input[name="confirm-destroy-now"]').fill('cut-short');
    await alice.getByRole('button', { name: 'Request destruction now' }).click();
    const requested = alice.getByTestId('requested-operation');
    await requested.waitFor(WAIT);
    const id = await requested.getAttribute('data-operation');
    // What a crash after the claim leaves: `executing`, never decided. Claimed just now (on the browser's clock, which
    // the console compares with), then well past the grace period (on the server's clock too).
    const leaveExecuting = (claimedAt: Date) =>
      kh.dataSource.query(`UPDATE keyhold_pending_operations SET status = 'executing', claimed_at = $2 WHERE id = $1`, [id, claimedAt]);
    await leaveExecuting(new Date());

    await bob.goto(`${origin()}/approvals`, { waitUntil: 'domcontentloaded' });
    const running = bob.getByTestId('running-operations').locator(`article[data-operation="${id}"]`);
    await running.waitFor(WAIT);
    assert.equal(await running.getAttribute('data-status'), 'executing');
    await running.getByText(/If it is still running at .*, it was interrupted, and you can mark it so here/).waitFor(WAIT);
    assert.equal(await running.getByRole('button', { name: 'Mark interrupted' }).count(), 0, 'not within the grace period');

    await leaveExecuting(new Date(Math.min(Date.now(), kh.clock.now().getTime()) - 10 * 60_000));
    await bob.getByRole('button', { name: 'Refresh' }).click();
    await running.getByText(/It started .* and never finished/).waitFor(WAIT);
    assert.match(await running.getByTestId('outcome').innerText(), /still running long after it started: it was probably interrupted/);
    await screenshot(bob, 'approvals-interrupted-desktop');
    await running.getByRole('button', { name: 'Mark interrupted' }).click();
    await running.getByTestId('outcome').getByText(/^Interrupted: it stopped while running and will not run again\. Check whether it took effect/).waitFor(WAIT);
    await running.locator('.badge-op-interrupted').waitFor(WAIT);
    assert.equal(await running.getByRole('button', { name: 'Mark interrupted' }).count(), 0);
    const [row] = await kh.dataSource.query('SELECT status FROM keyhold_pending_operations WHERE id = $1', [id]);
    assert.equal(row.status, 'interrupted');
    assert.equal((await kh.http().get('/v1/keys/cut-short').expect(200)).body.state, 'enabled', 'it never ran');

    await bob.reload({ waitUntil: 'domcontentloaded' });
    await bob.getByTestId('decided-operations').getByRole('button', { name: 'Show' }).click();
    await bob.getByTestId('decided-operations').locator(`article[data-operation="${id}"][data-status="interrupted"]`).waitFor(WAIT);
    assert.equal(await bob.getByTestId('running-operations').count(), 0);
  });

  it('services: a grant created, edited, expired and deleted; certificates issued (generated key, CSR), used, revoked and then refused', async () => {
    await kh.http().post('/v1/keys').send({ name: 'pay-orders', algorithm: 'aes-256-gcm', rotationPeriodDays: 90 }).expect(201);
    await alice.goto(`${origin()}/services`, { waitUntil: 'domcontentloaded' });
    const grants = alice.getByTestId('grants');
    await grants.getByRole('button', { name: 'New grant' }).click();
    await alice.locator('input[name="grant-identity"]').fill('spiffe://prod/ns/payments/*');
    await alice.locator('input[name="grant-keys"]').fill('pay-*');
    await alice.locator('input[name="grant-description"]').fill('payments services');
    await grants.getByRole('button', { name: 'Create grant' }).click();
    const grantRow = alice.locator('tr[data-grant="spiffe://prod/ns/payments/*"]');
    await grantRow.waitFor(WAIT);
    assert.match(await grantRow.innerText(), /pay-\*[\s\S]*encrypt, decrypt[\s\S]*never/);

    // A certificate Keyhold generates: the private key is offered once, as a file.
    const certificates = alice.getByTestId('certificates');
    await certificates.getByRole('button', { name: 'Issue certificate' }).click();
    await alice.locator('input[name="certificate-identity"]').fill('spiffe://prod/ns/payments/sa/api');
    await certificates.getByRole('button', { name: 'Issue', exact: true }).click();
    await alice.getByTestId('private-key-warning').waitFor(WAIT);
    await screenshot(alice, 'services-issued');
    const key = await downloaded(alice, alice.getByRole('button', { name: 'Download private key' }));
    assert.equal(key.name, 'prod-ns-payments-sa-api.key.pem');
    assert.match(key.text, /BEGIN PRIVATE KEY/);
    assert.equal(await alice.getByRole('button', { name: 'Download private key' }).count(), 0, 'offered once');
    assert.equal(await alice.getByText('BEGIN PRIVATE KEY').count(), 0);
    const certificate = await downloaded(alice, alice.getByRole('button', { name: 'Download certificate', exact: true }));
    assert.match(certificate.text, /BEGIN CERTIFICATE/);
    await alice.getByRole('button', { name: 'Done' }).click();

    const service: Credentials = { cert: certificate.text, key: key.text };
    const encrypt = () => kh.http(service).post('/v1/keys/pay-orders/encrypt').send({ plaintext: 'cGF5' });
    for (let i = 0; i < 3; i += 1) assert.equal((await encrypt()).status, 200);
    assert.equal((await kh.http(service).post('/v1/keys/pay-orders/rotate')).status, 403, 'only what the grant allows');

    const row = alice.locator('tr[data-identity="spiffe://prod/ns/payments/sa/api"]');
    await row.getByRole('button', { name: 'Revoke…' }).click();
    await row.getByLabel('Reason for revoking').fill('laptop lost');
    await row.getByRole('button', { name: 'Revoke', exact: true }).click();
    await row.getByText('Revoked: the service listener refuses this certificate.').waitFor(WAIT);
    assert.match(await row.innerText(), /revoked[\s\S]*laptop lost/);
    await eventually(async () => (await encrypt()).status === 401, 'the service plane refuses the revoked certificate');

    // A certificate for a CSR: Keyhold never sees the private key.
    x509.cryptoProvider.set(webcrypto as never);
    const pair = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=batch', keys: pair, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } });
    await certificates.getByRole('button', { name: 'Issue certificate' }).click();
    await alice.locator('input[name="certificate-identity"]').fill('spiffe://prod/ns/payments/sa/batch');
    await alice.getByLabel('I have a CSR').check();
    await alice.locator('textarea[name="csr"]').fill(csr.toString('pem'));
    await certificates.getByRole('button', { name: 'Issue', exact: true }).click();
    await alice.getByRole('region', { name: 'Issued certificate' }).waitFor(WAIT);
    assert.equal(await alice.getByRole('button', { name: 'Download private key' }).count(), 0, 'no private key for a CSR');
    const fromCsr = await downloaded(alice, alice.getByRole('button', { name: 'Download certificate', exact: true }));
    await alice.getByRole('button', { name: 'Done' }).click();
    const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', pair.privateKey)).toString('base64');
    const csrKey = `-----BEGIN PRIVATE KEY-----\n${pkcs8.match(/.{1,64}/g)?.join('\n')}\n-----END PRIVATE KEY-----\n`;
    const csrService: Credentials = { cert: fromCsr.text, key: csrKey };
    const used = await kh.http(csrService).post('/v1/keys/pay-orders/encrypt').send({ plaintext: 'cGF5' });
    assert.equal(used.status, 200, used.text);
    assert.equal((await kh.http(csrService).get('/v1/keys/pay-orders')).status, 403, 'the grant has no read yet');

    // A bad CSR: the API's message is shown.
    await certificates.getByRole('button', { name: 'Issue certificate' }).click();
    await alice.locator('input[name="certificate-identity"]').fill('spiffe://prod/ns/payments/sa/junk');
    await alice.getByLabel('I have a CSR').check();
    await alice.locator('textarea[name="csr"]').fill(`-----BEGIN CERTIFICATE REQUEST-----\n${'A'.repeat(200)}\n-----END CERTIFICATE REQUEST-----`);
    await certificates.getByRole('button', { name: 'Issue', exact: true }).click();
    await certificates.getByRole('alert').waitFor(WAIT);
    assert.match(await certificates.getByRole('alert').innerText(), /csr/i);
    await certificates.getByRole('button', { name: 'Cancel' }).click();
    await screenshot(alice, 'services-desktop');

    // Edit (read added, and it applies), expire and delete the grant.
    await grantRow.getByRole('button', { name: 'Edit' }).click();
    await alice.locator('input[name="grant-description"]').fill('payments services, read too');
    await alice.locator('input[name="operation-read"]').check();
    await grants.getByRole('button', { name: 'Save grant' }).click();
    await grantRow.getByText('payments services, read too').waitFor(WAIT);
    assert.match(await grantRow.innerText(), /encrypt, decrypt, read/);
    await eventually(async () => (await kh.http(csrService).get('/v1/keys/pay-orders')).status === 200, 'the edited grant applies');
    await grantRow.getByRole('button', { name: 'Expire now' }).click();
    await grantRow.getByText('expired', { exact: true }).waitFor(WAIT);
    await grantRow.getByRole('button', { name: 'Delete…' }).click();
    await grantRow.getByRole('button', { name: 'Delete for good' }).click();
    await grants.getByText('Deleted the grant for spiffe://prod/ns/payments/*.').waitFor(WAIT);
    assert.equal(await grantRow.count(), 0);
    await eventually(async () => (await kh.http(csrService).get('/v1/keys/pay-orders')).status === 404, 'without a grant the key is invisible');
  });

  it('edits the rotation period and the oldest decrypting version, and charts encryptions per version', async () => {
    await kh.server.usage.flush();
    await alice.goto(`${origin()}/keys/pay-orders`, { waitUntil: 'domcontentloaded' });
    await alice.getByTestId('rotation').waitFor(WAIT);
    assert.match(await alice.getByTestId('rotation').innerText(), /every 90 days/);
    await alice.getByRole('button', { name: 'Rotate now' }).click();
    await alice.getByText('Rotated: version 2 is now primary.').waitFor(WAIT);
    for (let i = 0; i < 5; i += 1) await kh.http().post('/v1/keys/pay-orders/encrypt').send({ plaintext: 'cGF5' }).expect(200);
    await kh.server.usage.flush();
    await alice.reload({ waitUntil: 'domcontentloaded' });

    await alice.getByRole('button', { name: 'Edit rotation policy…' }).click();
    await alice.locator('input[name="policy-rotation-days"]').fill('30');
    await alice.getByRole('button', { name: 'Save policy' }).click();
    await alice.getByText('Saved: pay-orders rotates every 30 days.').waitFor(WAIT);
    assert.match(await alice.getByTestId('rotation').innerText(), /every 30 days, next \d{4}-\d{2}-\d{2}/);
    assert.equal((await kh.http().get('/v1/keys/pay-orders').expect(200)).body.rotationPeriodDays, 30);

    await alice.getByRole('button', { name: 'Edit rotation policy…' }).click();
    await alice.locator('select[name="policy-min-decryption-version"]').selectOption('2');
    await alice.getByText('versions older than v2 will no longer decrypt').waitFor(WAIT);
    await alice.getByRole('button', { name: 'Save policy' }).click();
    await alice.getByText('Saved: pay-orders decrypts from v2 on.').waitFor(WAIT);
    assert.equal(await alice.getByTestId('min-decryption-version').innerText(), 'v2');
    assert.equal((await kh.http().get('/v1/keys/pay-orders').expect(200)).body.minDecryptionVersion, 2);

    const chart = alice.getByTestId('usage-chart');
    await chart.waitFor(WAIT);
    // Usage reaches Postgres on flush; the chart reads it per day and version.
    assert.equal(await chart.locator('svg[role="img"]').getAttribute('aria-label'), 'Encryptions per day over the last 30 days: v1: 4, v2: 5');
    assert.equal(await chart.locator('g[data-day]').count(), 30);
    const today = kh.clock.now().toISOString().slice(0, 10);
    assert.equal(await chart.locator(`g[data-day="${today}"]`).getAttribute('data-encryptions'), '9');
    assert.equal(await chart.locator(`g[data-day="${today}"] rect[data-version]`).count(), 2);
    await screenshot(alice, 'key-policy-chart');
  });

  it('alice renames her passkey and makes new recovery codes; the old ones stop working', async () => {
    await alice.getByRole('link', { name: /alice · admin/ }).click();
    await alice.getByRole('heading', { name: 'Your account' }).waitFor(WAIT);
    const passkeys = alice.getByTestId('passkeys-table');
    await passkeys.locator('tbody tr').first().waitFor(WAIT);
    assert.equal(await passkeys.locator('tbody tr').count(), 1);
    assert.equal(await passkeys.getByRole('button', { name: 'Remove' }).isDisabled(), true, 'the last passkey cannot be removed');
    await passkeys.getByRole('button', { name: 'Rename' }).click();
    await alice.getByLabel('New passkey name').fill('office laptop');
    await passkeys.getByRole('button', { name: 'Save' }).click();
    await alice.getByText('Renamed to “office laptop”.').waitFor(WAIT);
    await passkeys.locator('tr[data-passkey="office laptop"]').waitFor(WAIT);

    await alice.getByRole('button', { name: 'Make new recovery codes…' }).click();
    const confirmed = alice.waitForResponse((response) => response.url().endsWith('/api/v1/me/step-up/options') && response.status() === 200, WAIT);
    await alice.getByRole('button', { name: 'Replace my recovery codes' }).click();
    await confirmed; // the passkey prompt came first (her virtual authenticator answers it)
    await alice.getByTestId('recovery-codes').waitFor(WAIT);
    const fresh = (await alice.getByTestId('recovery-codes').locator('li').allInnerTexts()).map((code) => code.trim());
    assert.equal(fresh.length, 10);
    assert.ok(!fresh.some((code) => aliceCodes.includes(code)));
    await screenshot(alice, 'account-desktop');
    await alice.getByLabel('I saved them').check();
    await alice.getByRole('button', { name: 'Done' }).click();
    assert.equal(await alice.getByTestId('recovery-codes').count(), 0, 'the codes leave the page');
    const old = await kh.adminHttp().post('/api/v1/recovery').send({ name: 'alice', code: aliceCodes[0] });
    assert.equal(old.status, 401, 'an old code no longer works');
    aliceCodes = fresh;
  });

  it('on a new device alice signs in with a recovery code, registers a passkey there, adds a security key and removes a passkey', async () => {
    const { page: device, authenticators } = await openDevice(browser);
    await device.goto(`${origin()}/services`, { waitUntil: 'domcontentloaded' });
    await device.waitForURL((url) => url.pathname === '/sign-in', WAIT);
    await device.getByRole('link', { name: 'Use a recovery code' }).click();
    await device.getByRole('heading', { name: 'Sign in with a recovery code' }).waitFor(WAIT);
    await device.getByLabel('Your administrator name').fill('alice');
    await device.getByLabel('Recovery code').fill('AAAA-BBBB-CCCC-DDDD');
    await device.getByRole('button', { name: 'Continue' }).click();
    await device.getByRole('alert').waitFor(WAIT);
    assert.match(await device.getByRole('alert').innerText(), /do not match an unused code/);
    await device.getByLabel('Recovery code').fill(aliceCodes[3].toLowerCase());
    await device.getByRole('button', { name: 'Continue' }).click();
    await device.getByRole('heading', { name: 'Register a new passkey' }).waitFor(WAIT);
    await screenshot(device, 'recovery-register');
    await device.getByRole('button', { name: 'Create passkey' }).click();
    await device.waitForURL((url) => url.pathname === '/services', WAIT);
    assert.match(await device.getByTestId('who').innerText(), /alice · admin/);
    const reused = await kh.adminHttp().post('/api/v1/recovery').send({ name: 'alice', code: aliceCodes[3] });
    assert.equal(reused.status, 401, 'a recovery code works once');

    await device.goto(`${origin()}/account`, { waitUntil: 'domcontentloaded' });
    const passkeys = device.getByTestId('passkeys-table');
    const card = device.getByTestId('passkeys');
    await passkeys.locator('tbody tr').nth(1).waitFor(WAIT);
    const desktop = (await alice.context().cookies()).find((cookie) => cookie.name === '__Host-keyhold_session');
    assert.ok(desktop, "alice's desktop session cookie");
    const aliceSession = { cookie: `${desktop.name}=${desktop.value}` };
    assert.equal((await kh.adminHttp(aliceSession).get('/api/v1/session')).status, 200);
    // The lost laptop's passkey signed approvals: it goes all the same (the approvals keep their record), and
    // the sessions it may have opened end with it (alice's desktop session here), but not this one.
    // Each change to her passkeys asks for one of them first (the step-up prompt, answered by this device's).
    assert.match(await card.getByTestId('step-up-hint').innerText(), /asks for one of your passkeys/);
    const stepUps = (): Promise<unknown> => device.waitForResponse((response) => response.url().endsWith('/api/v1/me/step-up/options') && response.status() === 200, WAIT);
    let confirmed = stepUps();
    await passkeys.locator('tr[data-passkey="office laptop"]').getByRole('button', { name: 'Remove' }).click();
    await confirmed;
    await card.getByText('Removed the passkey “office laptop”: it no longer signs in.').waitFor(WAIT);
    assert.equal((await kh.adminHttp(aliceSession).get('/api/v1/session')).status, 401, "the lost device's session ended");

    // A security key is plugged in: this device's passkey confirms, then the key is touched for the new passkey
    // (it answers from when the registration options are asked for, which the confirmation must precede).
    const securityKey = await authenticators.plugIn();
    await device.route('**/api/v1/me/passkeys/options', async (route) => {
      await securityKey.switchTo();
      await route.continue();
    });
    await device.getByLabel('New passkey’s name').fill('security key');
    confirmed = stepUps();
    await device.getByRole('button', { name: 'Add a passkey' }).click();
    await confirmed;
    await card.getByText('Added the passkey “security key”.').waitFor(WAIT);
    await device.unroute('**/api/v1/me/passkeys/options');
    assert.equal(await passkeys.locator('tbody tr').count(), 2);
    // The security key confirms the removal of this device's passkey.
    confirmed = stepUps();
    await passkeys.locator('tr[data-passkey="passkey"]').getByRole('button', { name: 'Remove' }).click();
    await confirmed;
    await card.getByText('Removed the passkey “passkey”: it no longer signs in.').waitFor(WAIT);
    assert.deepEqual(await passkeys.locator('tbody tr').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-passkey'))), ['security key']);
    await securityKey.unplugFirst();

    await device.getByRole('button', { name: 'Sign out' }).click();
    await device.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await device.getByRole('heading', { name: 'Keys' }).waitFor(WAIT);
    assert.match(await device.getByTestId('who').innerText(), /alice · admin/);
    await device.context().close();
  });

  it('fits a 390px-wide screen: approvals, services, admins, account, a key with its chart', async () => {
    await bob.setViewportSize(NARROW);
    for (const [screen, ready] of [
      ['approvals', 'decided-operations'],
      ['services', 'certificates-table'],
      ['admins', 'admins-table'],
      ['account', 'passkeys-table'],
      ['keys/pay-orders', 'usage-chart'],
    ] as const) {
      await bob.goto(`${origin()}/${screen}`, { waitUntil: 'domcontentloaded' });
      await bob.getByTestId(ready).waitFor(WAIT);
      assert.ok((await horizontalOverflow(bob)) <= 0, `no horizontal scrolling on ${screen} at 390px`);
      await screenshot(bob, `${screen.replace('/', '-')}-narrow`);
    }
    await bob.setViewportSize(DESKTOP);
    await bob.goto(`${origin()}/admins`, { waitUntil: 'domcontentloaded' });
    await bob.getByTestId('admins-table').waitFor(WAIT);
    await screenshot(bob, 'admins-desktop');
  });
});
