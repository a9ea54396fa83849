import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseShamirSealFile } from '@keyhold/contracts';
import { combineShares, decodeShare, matchesKeyCheckValue } from '@keyhold/crypto-core';
import { run } from './main';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (line: string) => out.push(line), err: (line: string) => err.push(line) }, out, err };
}

describe('kmsctl init', () => {
  const root = mkdtempSync(join(tmpdir(), 'kmsctl-init-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  let next = 0;
  const freshDir = () => {
    const dir = join(root, String((next += 1)));
    mkdirSync(dir);
    return dir;
  };

  it('answers bad --shares / --threshold / --out with exit code 2, a clear message and the usage, writing nothing', async () => {
    const dir = freshDir();
    const cases: [string[], RegExp][] = [
      [['--threshold', '2', '--out', dir], /init needs --shares N and --threshold T/],
      [['--shares', '3', '--out', dir], /init needs --shares N and --threshold T/],
      [['--shares', '3', '--threshold', '2'], /init needs --out DIR/],
      [['--shares', '1', '--threshold', '1', '--out', dir], /--shares must be an integer from 2 to 255/],
      [['--shares', '256', '--threshold', '2', '--out', dir], /--shares must be an integer from 2 to 255/],
      [['--shares', 'five', '--threshold', '2', '--out', dir], /--shares must be an integer from 2 to 255/],
      [['--shares', '0x5', '--threshold', '2', '--out', dir], /--shares must be an integer from 2 to 255/],
      [['--shares', '5', '--threshold', '1', '--out', dir], /--threshold must be an integer from 2 to --shares \(5\)/],
      [['--shares', '5', '--threshold', '6', '--out', dir], /--threshold must be an integer from 2 to --shares \(5\)/],
      [['--shares', '5', '--threshold', '2.5', '--out', dir], /--threshold must be an integer from 2 to --shares \(5\)/],
      [['extra', '--shares', '5', '--threshold', '3', '--out', dir], /unknown command: init extra/],
    ];
    for (const [args, message] of cases) {
      const { io, out, err } = capture();
      assert.equal(await run(['init', ...args], io), 2, args.join(' '));
      assert.match(err.join('\n'), message, args.join(' '));
      assert.match(err.join('\n'), /kmsctl init --shares N --threshold T --out DIR/, 'the usage names init');
      assert.deepEqual(out, [], 'no share is printed');
    }
    assert.ok(!existsSync(join(dir, 'master-key.shamir.json')));
  });

  it('writes the seal file (mode 600, no key, no share) and prints each share once; any T of them rebuild the key it checks', async () => {
    const dir = freshDir();
    const { io, out, err } = capture();
    assert.equal(await run(['init', '--shares', '5', '--threshold', '3', '--out', dir], io), 0, err.join('\n'));
    const path = join(dir, 'master-key.shamir.json');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const text = readFileSync(path, 'utf8');
    const file = parseShamirSealFile(text);
    assert.ok(file, text);
    assert.deepEqual(Object.keys(JSON.parse(text)).sort(), ['checkValue', 'createdAt', 'format', 'setId', 'shares', 'threshold', 'version']);
    assert.equal(file.shares, 5);
    assert.equal(file.threshold, 3);

    const printed = out.join('\n');
    const shares = [...printed.matchAll(/^share (\d) of 5: (khs1-\S+)$/gm)].map((match) => match[2]);
    assert.equal(shares.length, 5, printed);
    assert.equal(new Set(shares).size, 5);
    for (const share of shares) {
      assert.equal(printed.split(share).length, 2, 'each share is printed exactly once');
      assert.ok(!text.includes(share.slice(5, 30)), 'a share is in the seal file');
    }
    assert.match(printed, /^Master key created and split into 5 shares; any 3 unseal Keyhold\.$/m);
    assert.match(printed, /Each share is printed ONCE, here, and stored nowhere\. Hand each to a different person; fewer than\n3 of them reveal nothing/);
    assert.match(printed, new RegExp(`Start Keyhold with KEYHOLD_SEAL=shamir KEYHOLD_SHAMIR_FILE=${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));

    const key = await combineShares([shares[4], shares[1], shares[2]].map((share) => decodeShare(share)));
    assert.ok(matchesKeyCheckValue(key, file.setId, Buffer.from(file.checkValue, 'base64')), '3 shares rebuild the checked key');
    for (const form of [key.toString('hex'), key.toString('base64'), key.toString('base64url')]) {
      assert.ok(!text.includes(form) && !printed.includes(form), 'the master key is written or printed');
    }
    const tooFew = await combineShares(shares.slice(0, 2).map((share) => decodeShare(share)));
    assert.ok(!matchesKeyCheckValue(tooFew, file.setId, Buffer.from(file.checkValue, 'base64')), '2 shares do not');
  });

  it('never overwrites an existing seal file: exit 1, the file untouched, no share printed', async () => {
    const dir = freshDir();
    assert.equal(await run(['init', '--shares', '3', '--threshold', '2', '--out', dir], capture().io), 0);
    const path = join(dir, 'master-key.shamir.json');
    const before = readFileSync(path, 'utf8');
    const { io, out, err } = capture();
    assert.equal(await run(['init', '--shares', '3', '--threshold', '2', '--out', dir], io), 1);
    assert.match(err.join('\n'), /master-key\.shamir\.json already exists and was left as it is/);
    assert.deepEqual(out, []);
    assert.equal(readFileSync(path, 'utf8'), before);
  });

  it('refuses a missing --out directory with exit 1 rather than creating it', async () => {
    const { io, out, err } = capture();
    assert.equal(await run(['init', '--shares', '3', '--threshold', '2', '--out', join(root, 'absent', 'dir')], io), 1);
    assert.match(err.join('\n'), /does not exist; create it first/);
    assert.deepEqual(out, []);
  });

  it('--json prints one JSON object with the shares as an array, for automation', async () => {
    const dir = freshDir();
    const { io, out } = capture();
    assert.equal(await run(['init', '--shares', '4', '--threshold', '2', '--out', dir, '--json'], io), 0);
    assert.equal(out.length, 1);
    const result = JSON.parse(out[0]) as { file: string; setId: string; threshold: number; shares: string[] };
    assert.deepEqual(Object.keys(result).sort(), ['file', 'setId', 'shares', 'threshold']);
    assert.equal(result.file, join(dir, 'master-key.shamir.json'));
    assert.equal(result.threshold, 2);
    assert.equal(result.shares.length, 4);
    const file = parseShamirSealFile(readFileSync(result.file, 'utf8'));
    assert.equal(file?.setId, result.setId);
    for (const share of result.shares) assert.equal(decodeShare(share).setId, result.setId);
  });
});
