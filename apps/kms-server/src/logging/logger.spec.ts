import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { KeyholdLogger, createLogger, scrubMessage } from './logger';

function capture(): { logger: KeyholdLogger; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { logger: new KeyholdLogger(createLogger({ level: 'trace', destination })), lines };
}

describe(KeyholdLogger.name, () => {
  it('redacts secret fields at any of the first three levels', async () => {
    const { logger, lines } = capture();
    logger.log({ msg: 'op', plaintext: 'PLAINTEXT-1', request: { key: 'KEY-2', inner: { passphrase: 'PASS-3' } } });
    logger.error({ context: { tenant: 'CTX-4' }, privateKeyPem: 'PEM-5', token: 'TOKEN-6' });
    await new Promise((resolve) => setImmediate(resolve));
    const out = lines.join('');
    for (const secret of ['PLAINTEXT-1', 'KEY-2', 'PASS-3', 'CTX-4', 'PEM-5', 'TOKEN-6']) {
      assert.ok(!out.includes(secret), `${secret} leaked`);
    }
    assert.ok(out.includes('[REDACTED]'));
    assert.ok(out.includes('"msg":"op"'));
  });

  it('scrubs credentials out of connection strings in messages', () => {
    assert.equal(
      scrubMessage('connect failed: postgres://keyhold:hunter2@db:5432/keyhold'),
      'connect failed: postgres://keyhold:[REDACTED]@db:5432/keyhold',
    );
    const { logger, lines } = capture();
    logger.error(new Error('postgres://u:s3cret@h/db refused'));
    assert.ok(!lines.join('').includes('s3cret'));
  });
});
