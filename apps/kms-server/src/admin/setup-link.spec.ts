import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SETUP_LINK_FILE, showSetupLink } from './setup-link';

describe('the setup link at a start without an administrator', () => {
  const home = mkdtempSync(join(tmpdir(), 'keyhold-setup-link-'));
  after(() => rmSync(home, { recursive: true, force: true }));
  const capture = () => {
    const printed: string[] = [];
    const warnings: string[] = [];
    return { printed, warnings, output: { print: (text: string) => printed.push(text), warn: (message: string) => warnings.push(message) } };
  };
  const link = 'https://keyhold.example:8444/setup#token=abc.def';

  it('development: printed', () => {
    const { printed, output } = capture();
    showSetupLink(link, null, output);
    assert.match(printed.join(''), /Open this one-time setup link within 24 hours[\s\S]*https:\/\/keyhold\.example:8444\/setup#token=abc\.def/);
  });

  it('production: written to an owner-only file that replaces the last start’s, and never printed', () => {
    const file = join(home, SETUP_LINK_FILE);
    writeFileSync(file, 'https://old/setup#token=old\n', { mode: 0o644 });
    const { printed, warnings, output } = capture();
    showSetupLink(link, file, output);
    assert.equal(readFileSync(file, 'utf8'), `${link}\n`);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.ok(!printed.join('').includes('token='), 'the link is not on stdout');
    assert.match(printed.join(''), new RegExp(`is in ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(mode 600\\)`));
    assert.deepEqual(warnings, []);
  });

  it('production, folder not writable: printed after all, with a warning', () => {
    const { printed, warnings, output } = capture();
    showSetupLink(link, join(home, 'missing-folder', SETUP_LINK_FILE), output);
    assert.match(printed.join(''), /token=abc\.def/);
    assert.deepEqual(warnings, ['could not write the setup link file; printing the link instead']);
  });
});
