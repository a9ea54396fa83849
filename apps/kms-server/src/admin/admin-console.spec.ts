import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import { ADMIN_CONSOLE_CSP, registerAdminConsole } from './admin-console';

describe('registerAdminConsole', () => {
  it('says the console is not built when its folder is missing, and leaves /api/ and /docs to the not-found handler', async () => {
    const fastify = Fastify();
    registerAdminConsole(fastify, join(tmpdir(), 'keyhold-no-such-console'));
    const page = await fastify.inject({ method: 'GET', url: '/keys/payments' });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /admin console is not built/);
    assert.equal(page.headers['content-security-policy'], ADMIN_CONSOLE_CSP);
    assert.equal((await fastify.inject({ method: 'GET', url: '/api/v1/nothing' })).statusCode, 404);
    assert.equal((await fastify.inject({ method: 'GET', url: '/docs/x' })).statusCode, 404);
    await fastify.close();
  });

  it('serves files from the folder only, and index.html for other paths', async () => {
    const root = mkdtempSync(join(tmpdir(), 'keyhold-console-'));
    try {
      const dist = join(root, 'dist');
      mkdirSync(join(dist, 'assets'), { recursive: true });
      writeFileSync(join(dist, 'index.html'), '<!doctype html><div id="root"></div>');
      writeFileSync(join(dist, 'assets', 'app.js'), 'console.log(1)');
      writeFileSync(join(root, 'secret.txt'), 'outside');
      const fastify = Fastify();
      registerAdminConsole(fastify, dist);
      const script = await fastify.inject({ method: 'GET', url: '/assets/app.js' });
      assert.equal(script.body, 'console.log(1)');
      assert.match(String(script.headers['content-type']), /^text\/javascript/);
      assert.equal((await fastify.inject({ method: 'GET', url: '/assets/gone.js' })).statusCode, 404);
      for (const url of ['/', '/setup', '/keys/a.b', '/%2e%2e/secret.txt', '/..%2fsecret.txt']) {
        const answer = await fastify.inject({ method: 'GET', url });
        assert.ok(!answer.body.includes('outside'), url);
        if (answer.statusCode === 200) assert.match(answer.body, /id="root"/, url);
      }
      await fastify.close();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
