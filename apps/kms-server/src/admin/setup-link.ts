import { rmSync, writeFileSync } from 'node:fs';

/** Where a production start without an administrator leaves the setup link (in the Keyhold home folder). */
export const SETUP_LINK_FILE = 'setup-link';

export interface SetupLinkOutput {
  print(text: string): void;
  warn(message: string, details: Record<string, unknown>): void;
}

/**
 * The link is a credential until it is used (single use, 24 hours): never logged. With no file (development)
 * it is printed. In production stdout is usually collected with the logs, so it goes to an owner-only file
 * instead, replaced at each start (only the latest link opens), and stdout says where. If that file cannot
 * be written the link is printed after all, with a warning, rather than leaving Keyhold without a way in.
 */
export function showSetupLink(link: string, file: string | null, output: SetupLinkOutput): void {
  if (file) {
    try {
      rmSync(file, { force: true });
      writeFileSync(file, `${link}\n`, { mode: 0o600, flag: 'wx' });
      output.print(`\nNo administrator yet. The one-time setup link (valid 24 hours) is in ${file} (mode 600); open it to register the first passkey.\n\n`);
      return;
    } catch (error) {
      output.warn('could not write the setup link file; printing the link instead', { file, err: (error as Error).message });
    }
  }
  output.print(`\nNo administrator yet. Open this one-time setup link within 24 hours to register the first passkey:\n  ${link}\n\n`);
}
