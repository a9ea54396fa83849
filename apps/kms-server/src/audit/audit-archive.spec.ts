import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { AuditArchiveWriter, checkArchiveFolder } from './audit-archive';

describe('audit archive', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-archive-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses at start a folder that is missing or a file; none set is none', () => {
    assert.equal(checkArchiveFolder(undefined), null);
    assert.equal(checkArchiveFolder(dir), dir);
    assert.throws(() => checkArchiveFolder(join(dir, 'missing')), /KEYHOLD_AUDIT_ARCHIVE_DIR=.*missing: no such folder \(ENOENT\)/);
    writeFileSync(join(dir, 'a-file'), '');
    assert.throws(() => checkArchiveFolder(join(dir, 'a-file')), /KEYHOLD_AUDIT_ARCHIVE_DIR=.*a-file: not a folder/);
  });

  it('writes JSON Lines, gzip-compressed, under its final name only once complete, owner-only', async () => {
    const writer = await AuditArchiveWriter.create(dir, 11, 20);
    assert.deepEqual(readdirSync(dir).filter((name) => name.startsWith('keyhold-audit-11')), ['keyhold-audit-11-20.jsonl.gz.partial']);
    const lines = Array.from({ length: 10 }, (_, i) => ({ type: 'record', sequence: 11 + i }) as never);
    await writer.write([{ type: 'header', format: 'keyhold-audit-export-v1', exportedAt: '2026-01-01T00:00:00.000Z', filters: {}, keyFingerprint: null }]);
    await writer.write(lines);
    const archived = await writer.finish();
    const path = join(dir, 'keyhold-audit-11-20.jsonl.gz');
    assert.deepEqual(readdirSync(dir).filter((name) => name.startsWith('keyhold-audit-11')), ['keyhold-audit-11-20.jsonl.gz']);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const bytes = readFileSync(path);
    assert.deepEqual(archived, { file: 'keyhold-audit-11-20.jsonl.gz', bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), records: 10 });
    const text = gunzipSync(bytes).toString('utf8').trim().split('\n');
    assert.equal(text.length, 11);
    assert.deepEqual(JSON.parse(text[10]), { type: 'record', sequence: 20 });
  });

  it('abort leaves nothing behind', async () => {
    const writer = await AuditArchiveWriter.create(dir, 21, 30);
    await writer.write([{ type: 'record', sequence: 21 } as never]);
    await writer.abort();
    assert.deepEqual(readdirSync(dir).filter((name) => name.startsWith('keyhold-audit-21')), []);
  });

  it('a file that fails (a full disk) fails the next write instead of hanging it; a link under its name is not followed', async () => {
    const writer = await AuditArchiveWriter.create(dir, 31, 40);
    (writer as unknown as { output: { destroy(error: Error): void } }).output.destroy(Object.assign(new Error('no space left on device'), { code: 'ENOSPC' }));
    const noise = Array.from({ length: 2000 }, (_, i) => ({ type: 'record', sequence: i, pad: randomBytes(64).toString('hex') }) as never);
    await assert.rejects(
      (async () => {
        for (let round = 0; round < 50; round += 1) await writer.write(noise);
      })(),
      /no space left on device/,
    );
    await writer.abort();
    assert.deepEqual(readdirSync(dir).filter((name) => name.startsWith('keyhold-audit-31')), []);

    const target = join(dir, 'elsewhere');
    writeFileSync(target, 'untouched');
    symlinkSync(target, join(dir, 'keyhold-audit-41-50.jsonl.gz.partial'));
    await assert.rejects(AuditArchiveWriter.create(dir, 41, 50), { code: 'ELOOP' });
    assert.equal(readFileSync(target, 'utf8'), 'untouched');
  });
});
