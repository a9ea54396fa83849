import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';

// The admin console's browser tests: Debian's Chromium, headless, driven by playwright-core. Passkeys come from Chromium's
// virtual authenticator (CDP WebAuthn), one per browser context: a context is one person's device.

export const CHROMIUM = process.env.KEYHOLD_CHROMIUM ?? '/usr/bin/chromium';
export const SCREENSHOTS = join(resolve(__dirname, '../../../../..'), 'test-output', 'screenshots');
/** Generous: CI machines are small and shared. A wait is for a condition, never a fixed time. */
export const WAIT = { timeout: 60_000 };
export const DESKTOP = { width: 1280, height: 860 };
export const NARROW = { width: 390, height: 844 };

/** Skip the suite without Chromium, except in CI, where a missing browser is a failure. */
export const browserSkip = !process.env.CI && !existsSync(CHROMIUM) && `no Chromium at ${CHROMIUM} (apt-get install chromium)`;

export async function launchChromium(): Promise<Browser> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 120_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}

/** Controls of a page's virtual passkey authenticators (CDP WebAuthn). */
export interface VirtualAuthenticators {
  /** Swaps the authenticator for a new, empty one (another security key). */
  swap(): Promise<void>;
  /**
   * Plugs in a second, empty authenticator (a security key) that answers no prompt until `switchTo`: prompts keep
   * going to the first one. `switchTo` makes the new one the only one that answers; `unplugFirst` removes the first.
   */
  plugIn(): Promise<{ switchTo(): Promise<void>; unplugFirst(): Promise<void> }>;
}

/** Gives the page a virtual authenticator (user-verifying, answering every prompt by itself). */
export async function withVirtualAuthenticator(context: BrowserContext, page: Page): Promise<VirtualAuthenticators> {
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  // Chromium takes one internal (platform) authenticator per page: a second one is a USB security key.
  const add = async (answers = true, transport: 'internal' | 'usb' = 'internal') => (await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport,
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: answers,
    },
  })).authenticatorId;
  const answering = (authenticatorId: string, enabled: boolean) => cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled });
  let authenticatorId = await add();
  return {
    swap: async () => {
      await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId });
      authenticatorId = await add();
    },
    plugIn: async () => {
      const first = authenticatorId;
      const second = await add(false, 'usb');
      return {
        switchTo: async () => {
          await answering(first, false);
          await answering(second, true);
          authenticatorId = second;
        },
        unplugFirst: () => cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId: first }).then(() => undefined),
      };
    },
  };
}

/** A new browser context (its own cookies) with its own passkey authenticator: another person, or another device. */
export async function openDevice(
  browser: Browser,
  viewport = DESKTOP,
): Promise<{ context: BrowserContext; page: Page; authenticators: VirtualAuthenticators }> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport, locale: 'en-US', timezoneId: 'UTC', acceptDownloads: true });
  context.setDefaultTimeout(60_000);
  context.setDefaultNavigationTimeout(90_000);
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`[browser] ${error.message}`));
  return { context, page, authenticators: await withVirtualAuthenticator(context, page) };
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** How far the page scrolls sideways: 0 when it fits the viewport. */
export function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
}

/** Enrols an administrator in the browser from an invitation link: the new passkey is the page's own. */
export async function enrolThroughInvitation(page: Page, link: string, name: string): Promise<void> {
  await page.goto(link, { waitUntil: 'domcontentloaded' });
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('button', { name: 'Create passkey' }).click();
  await page.getByLabel('I saved them').check(WAIT);
  await page.getByRole('button', { name: 'Continue to Keyhold' }).click();
  await page.getByRole('heading', { name: 'Keys' }).waitFor(WAIT);
}
