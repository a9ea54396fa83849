import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { GENESIS_HASH, chainRecords, generateEd25519KeyPair, publicKeyFingerprint, signCheckpoint } from '@keyhold/crypto-core';
import { VerifyProgress } from './audit-commands';
import { run } from './main';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (line: string) => out.push(line), err: (line: string) => err.push(line) }, out, err };
}

describe('kmsctl', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kmsctl-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('answers bad usage with exit code 2 and a usage text, never a stack trace', async () => {
    for (const argv of [[], ['audit'], ['audit', 'frobnicate'], ['keys', 'list'], ['audit', 'verify', '--bogus'], ['audit', 'verify', '--file', 'x.jsonl']]) {
      const { io, err, out } = capture();
      assert.equal(await run(argv, io), 2, argv.join(' '));
      assert.ok(!`${err.join('\n')}${out.join('\n')}`.includes('    at '), 'no stack trace');
    }
    const { io, err } = capture();
    await run(['audit', 'export', '--outcome', 'maybe', '--database-url', 'postgres://x@127.0.0.1:1/x'], io);
    assert.match(err.join('\n'), /--outcome/);
  });

  it('verifies an export file offline, and names the first broken link with exit code 1', async () => {
    const keys = generateEd25519KeyPair();
    const keyFile = join(dir, 'key.pem');
    writeFileSync(keyFile, keys.publicKeyPem);
    const records = chainRecords(0, GENESIS_HASH, Array.from({ length: 4 }, (_, i) => ({
      time: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
      plane: 'service' as const,
      actor: 'spiffe://test/app',
      operation: 'encrypt',
      keyName: 'k',
      keyVersion: 1,
      outcome: 'success' as const,
      errorCode: null,
      requestId: `r-${i}`,
      sourceAddress: '127.0.0.1',
      contextHmac: null,
    })));
    const checkpoint = signCheckpoint(keys.privateKeyDer, { sequence: 4, headHash: records[3].hash, time: records[3].time, keyFingerprint: publicKeyFingerprint(keys.publicKeyPem) });
    const lines = [
      { type: 'header', format: 'keyhold-audit-export-v1', exportedAt: records[3].time, filters: {}, keyFingerprint: checkpoint.keyFingerprint },
      ...records.map((record) => ({ type: 'record', ...record })),
      { type: 'checkpoint', ...checkpoint },
    ];
    const good = join(dir, 'good.jsonl');
    writeFileSync(good, lines.map((line) => JSON.stringify(line)).join('\n'));
    const ok = capture();
    assert.equal(await run(['audit', 'verify', '--file', good, '--public-key', keyFile], ok.io), 0);
    assert.match(ok.out[0], /^OK: 4 record\(s\) #1\.\.#4, 1 checkpoint\(s\)/);

    const swapped = [lines[0], lines[1], lines[3], lines[2], lines[4], lines[5]];
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, swapped.map((line) => JSON.stringify(line)).join('\n'));
    const broken = capture();
    assert.equal(await run(['audit', 'verify', '--file', bad, '--public-key', keyFile], broken.io), 1);
    assert.match(broken.out[0], /^BROKEN at #3 \(reordered\)/);

    // The last record cut from the file: its checkpoint remains, without its record.
    const cut = join(dir, 'cut.jsonl');
    writeFileSync(cut, [lines[0], lines[1], lines[2], lines[3], lines[5]].map((line) => JSON.stringify(line)).join('\n'));
    const truncated = capture();
    assert.equal(await run(['audit', 'verify', '--file', cut, '--public-key', keyFile], truncated.io), 1);
    assert.equal(truncated.out[0], 'BROKEN at #4 (deleted): records after #3 are missing: a signed checkpoint covers sequence #4');

    // Checkpoints come in sequence order, as Keyhold writes them: out of order, they are reported (order is evidence).
    const early = signCheckpoint(keys.privateKeyDer, { sequence: 2, headHash: records[1].hash, time: records[1].time, keyFingerprint: checkpoint.keyFingerprint });
    const shuffled = join(dir, 'shuffled-checkpoints.jsonl');
    writeFileSync(shuffled, [...lines, { type: 'checkpoint', ...early }].map((line) => JSON.stringify(line)).join('\n'));
    const outOfOrder = capture();
    assert.equal(await run(['audit', 'verify', '--file', shuffled, '--public-key', keyFile], outOfOrder.io), 1);
    assert.equal(outOfOrder.out[0], 'BROKEN at #2 (reordered): checkpoint #2 comes after checkpoint #4: the checkpoints are out of their order');

    // Without any checkpoint, only the chain itself is checked, and the output says what that leaves unproven.
    const unsigned = join(dir, 'unsigned.jsonl');
    writeFileSync(unsigned, lines.slice(0, 5).map((line) => JSON.stringify(line)).join('\n'));
    const chainOnly = capture();
    assert.equal(await run(['audit', 'verify', '--file', unsigned, '--public-key', keyFile], chainOnly.io), 0);
    assert.match(chainOnly.out[0], /^OK: 4 record\(s\) #1\.\.#4, 0 checkpoint\(s\).*no signed checkpoint/);
  });

  it('verifies an export far larger than its heap, plain or gzip-compressed, reading it page by page', async () => {
    const keys = generateEd25519KeyPair();
    const keyFile = join(dir, 'big-key.pem');
    writeFileSync(keyFile, keys.publicKeyPem);
    const count = 150_000;
    const alteredAt = 120_001;
    const fingerprint = publicKeyFingerprint(keys.publicKeyPem);
    // About 75 MB of JSON Lines, checked by a kmsctl whose whole heap is 48 MB: it cannot hold the file.
    async function writeExport(path: string, gzip: boolean, alter: boolean): Promise<void> {
      async function* lines() {
        yield `${JSON.stringify({ type: 'header', format: 'keyhold-audit-export-v1', exportedAt: '2026-01-02T00:00:00.000Z', filters: {}, keyFingerprint: fingerprint })}\n`;
        let head: { sequence: number; hash: string; time?: string } = { sequence: 0, hash: GENESIS_HASH };
        const checkpoints = [];
        for (let start = 0; start < count; start += 1000) {
          const page = chainRecords(head.sequence, head.hash, Array.from({ length: 1000 }, (_, i) => ({
            time: new Date(Date.UTC(2026, 0, 1) + start + i).toISOString(),
            plane: 'service' as const,
            actor: 'spiffe://test/app',
            operation: 'encrypt',
            keyName: 'payments',
            keyVersion: 3,
            outcome: 'success' as const,
            errorCode: null,
            requestId: `request-${start + i}-${'x'.repeat(300)}`,
            sourceAddress: '10.0.0.7',
            contextHmac: null,
          })));
          head = page[page.length - 1];
          if (head.sequence % 50_000 === 0) checkpoints.push(signCheckpoint(keys.privateKeyDer, { sequence: head.sequence, headHash: head.hash, time: head.time as string, keyFingerprint: fingerprint }));
          yield page.map((record) => JSON.stringify({ type: 'record', ...record, ...(alter && record.sequence === alteredAt ? { keyVersion: 2 } : {}) })).join('\n') + '\n';
        }
        yield checkpoints.map((checkpoint) => JSON.stringify({ type: 'checkpoint', ...checkpoint })).join('\n') + '\n';
      }
      await (gzip ? pipeline(lines, createGzip(), createWriteStream(path)) : pipeline(lines, createWriteStream(path)));
    }
    const kmsctl = (file: string) =>
      spawnSync(process.execPath, ['--max-old-space-size=48', join(__dirname, 'main.js'), 'audit', 'verify', '--file', file, '--public-key', keyFile], { encoding: 'utf8' });

    const plain = join(dir, 'big.jsonl');
    await writeExport(plain, false, false);
    assert.ok(statSync(plain).size > 70_000_000, 'the file is larger than the heap');
    const ok = kmsctl(plain);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /^OK: 150000 record\(s\) #1\.\.#150000, 3 checkpoint\(s\)/);

    const compressed = join(dir, 'big.jsonl.gz');
    await writeExport(compressed, true, true);
    const broken = kmsctl(compressed);
    assert.equal(broken.status, 1, broken.stderr);
    assert.equal(broken.stdout.trim(), `BROKEN at #${alteredAt} (altered): record #${alteredAt} was altered: its content no longer matches its hash`);

    // A compressed export cut short cannot be read to its end: no verdict, exit code 2.
    const cut = join(dir, 'cut.jsonl.gz');
    writeFileSync(cut, readFileSync(compressed).subarray(0, 200_000));
    const unreadable = kmsctl(cut);
    assert.equal(unreadable.status, 2, unreadable.stdout);
    assert.match(unreadable.stderr, /^kmsctl: cannot read .*cut\.jsonl\.gz after line \d+: unexpected end of file/);
  });

  it('says on stderr, once a million records, how far a long verification has come', () => {
    const { io, err, out } = capture();
    const counting = new VerifyProgress(io);
    for (let page = 1; page <= 6; page += 1) counting.verified(Array.from({ length: 400_000 }, (_, i) => ({ sequence: (page - 1) * 400_000 + i + 1 })));
    assert.deepEqual(err.map((line) => line.replace(/\(\d+ s\)$/, '(…)')), [
      'verified 1200000 records so far, through #1200000 (…)',
      'verified 2000000 records so far, through #2000000 (…)',
    ]);
    assert.deepEqual(out, [], 'the verdict alone goes to stdout');
  });
});

