import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, beforeEach, describe, it } from 'node:test';
import { KeyholdApiError, KeyholdClient, KeyholdItemError, KeyholdNetworkError } from './index';

// Test PKI made with the openssl CLI (node:crypto cannot issue certificates). `@keyhold/crypto-core`'s
// issuer was not written yet when this spec was; it can replace `makePki` once it is.

interface Pem {
  certificatePem: string;
  privateKeyPem: string;
}

interface Pki {
  dir: string;
  ca: Pem;
  server: Pem;
  client: Pem;
  /** A second, unrelated CA and a server certificate from it (the client must refuse it). */
  rogueServer: Pem;
}

/** Test bytes only (this lib keeps away from node:crypto): varied, not secret. */
function someBytes(length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(Math.random() * 256);
  return out;
}

let serial = 0;

function openssl(cwd: string, args: string[]): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

function readPem(dir: string, name: string): Pem {
  return {
    certificatePem: readFileSync(join(dir, `${name}.crt`), 'utf8'),
    privateKeyPem: readFileSync(join(dir, `${name}.key`), 'utf8'),
  };
}

function makeCa(dir: string, name: string): Pem {
  openssl(dir, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return readPem(dir, name);
}

function issue(dir: string, ca: string, name: string, commonName: string, usage: 'server' | 'client', san: string): Pem {
  writeFileSync(
    join(dir, `${name}.ext`),
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      `extendedKeyUsage=${usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
      `subjectAltName=${san}`,
      '',
    ].join('\n'),
  );
  openssl(dir, [
    'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${commonName}`,
  ]);
  openssl(dir, [
    'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`,
    '-set_serial', `0x${(Date.now() * 16 + ++serial).toString(16)}`, '-days', '2', '-out', `${name}.crt`, '-extfile', `${name}.ext`,
  ]);
  return readPem(dir, name);
}

function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-sdk-spec-'));
  const ca = makeCa(dir, 'ca');
  const server = issue(dir, 'ca', 'server', 'localhost', 'server', 'DNS:localhost,IP:127.0.0.1');
  const client = issue(dir, 'ca', 'client', 'sdk-test-client', 'client', 'URI:spiffe://keyhold.test/sdk-test');
  makeCa(dir, 'rogue-ca');
  const rogueServer = issue(dir, 'rogue-ca', 'rogue-server', 'localhost', 'server', 'DNS:localhost,IP:127.0.0.1');
  return { dir, ca, server, client, rogueServer };
}

// ---- a tiny mTLS server whose behaviour each test sets ----

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  peerCommonName: string | undefined;
}

type Handler = (req: Seen, res: ServerResponse) => void;

interface TestServer {
  server: Server;
  baseUrl: string;
  seen: Seen[];
  connections: number;
  handler: Handler;
}

async function startServer(pem: Pem, ca: string): Promise<TestServer> {
  const state: Partial<TestServer> & { seen: Seen[]; connections: number } = {
    seen: [],
    connections: 0,
    handler: (_req, res) => json(res, 200, {}),
  };
  const server = createServer(
    { key: pem.privateKeyPem, cert: pem.certificatePem, ca, requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const cn = (req.socket as TLSSocket).getPeerCertificate()?.subject?.CN;
        const seen: Seen = {
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          peerCommonName: Array.isArray(cn) ? cn[0] : cn,
        };
        state.seen.push(seen);
        state.handler!(seen, res);
      });
    },
  );
  server.on('secureConnection', () => {
    state.connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.server = server;
  state.baseUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state as TestServer;
}

async function stopServer(s: TestServer): Promise<void> {
  s.server.closeAllConnections();
  await new Promise<void>((resolve) => s.server.close(() => resolve()));
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function errorBody(code: string, message: string, requestId = 'req-123'): unknown {
  return { error: { code, message, requestId } };
}

function keyView(name: string): Record<string, unknown> {
  return {
    name,
    algorithm: 'aes-256-gcm',
    description: null,
    state: 'enabled',
    primaryVersion: 1,
    minDecryptionVersion: 1,
    rotationPeriodDays: null,
    nextRotationAt: null,
    destroyAt: null,
    createdAt: '2025-01-01T00:00:00.000Z',
    updatedAt: '2025-01-01T00:00:00.000Z',
    labels: {},
    encryptions: 0,
    versions: [],
  };
}

/** A fake "ciphertext" that carries the plaintext, so round trips can be checked end to end. */
const FAKE_PREFIX = 'kh1:test:1:';

function fakeCrypto(req: Seen, res: ServerResponse): void {
  const body = req.body ? (JSON.parse(req.body) as Record<string, unknown>) : {};
  const m = /^\/v1\/keys\/([^/]+)\/(encrypt|decrypt|reencrypt|datakey|wrap|unwrap)$/.exec(req.url);
  if (req.url === '/v1/random') {
    json(res, 200, { random: someBytes(body.bytes as number).toString('base64') });
  } else if (req.url === '/v1/decrypt') {
    json(res, 200, { plaintext: String(body.ciphertext).slice(FAKE_PREFIX.length), keyName: 'any', keyVersion: 1 });
  } else if (m) {
    const keyName = decodeURIComponent(m[1]);
    switch (m[2]) {
      case 'encrypt':
        return json(res, 200, { ciphertext: FAKE_PREFIX + String(body.plaintext), keyName, keyVersion: 3 });
      case 'wrap':
        return json(res, 200, { ciphertext: FAKE_PREFIX + String(body.key), keyName, keyVersion: 3 });
      case 'decrypt':
        return json(res, 200, { plaintext: String(body.ciphertext).slice(FAKE_PREFIX.length), keyName, keyVersion: 3 });
      case 'unwrap':
        return json(res, 200, { key: String(body.ciphertext).slice(FAKE_PREFIX.length), keyName, keyVersion: 3 });
      case 'reencrypt':
        return json(res, 200, { ciphertext: String(body.ciphertext), keyName, keyVersion: 4 });
      case 'datakey': {
        const dk = someBytes((body.bytes as number | undefined) ?? 32).toString('base64');
        const out: Record<string, unknown> = { ciphertext: FAKE_PREFIX + dk, keyName, keyVersion: 3 };
        if (body.withPlaintext !== false) out.plaintext = dk;
        return json(res, 200, out);
      }
    }
  } else {
    json(res, 404, errorBody('NOT_FOUND', 'no route'));
  }
}

void describe('KeyholdClient', () => {
  let pki: Pki;
  let srv: TestServer;
  let client: KeyholdClient;

  function newClient(extra: { baseUrl?: string; timeoutMs?: number; connections?: number; signal?: AbortSignal } = {}): KeyholdClient {
    return new KeyholdClient({
      baseUrl: srv.baseUrl,
      ca: pki.ca.certificatePem,
      cert: pki.client.certificatePem,
      key: pki.client.privateKeyPem,
      ...extra,
    });
  }

  before(async () => {
    pki = makePki();
    srv = await startServer(pki.server, pki.ca.certificatePem);
    client = newClient();
  });

  after(async () => {
    await client.close();
    await stopServer(srv);
    rmSync(pki.dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    srv.seen.length = 0;
    srv.handler = (req, res) => json(res, 200, keyView('k'));
  });

  void it('presents its client certificate and reuses keep-alive connections of one pool', async () => {
    const one = newClient({ connections: 1 });
    try {
      const start = srv.connections;
      for (let i = 0; i < 5; i++) await one.getKey('k');
      await Promise.all(Array.from({ length: 5 }, () => one.getKey('k')));
      assert.equal(srv.connections - start, 1, 'every request over the one kept-alive connection');
    } finally {
      await one.close();
    }
    const two = newClient({ connections: 2 });
    try {
      const start = srv.connections;
      await Promise.all(Array.from({ length: 20 }, () => two.getKey('k')));
      for (let i = 0; i < 5; i++) await two.getKey('k');
      assert.ok(srv.connections - start <= 2, `at most 2 connections, saw ${srv.connections - start}`);
    } finally {
      await two.close();
    }
    assert.equal(srv.seen.length, 35);
    assert.ok(srv.seen.every((s) => s.peerCommonName === 'sdk-test-client'));
  });

  void it('sends JSON with content-type and path-encodes key names', async () => {
    await client.createKey({ name: 'payments', algorithm: 'aes-256-gcm', labels: { team: 'a' } });
    await client.getKey('a/b c?');
    await client.listKeys({ limit: 2, cursor: 'x y&z' });
    await client.updateKey('payments', { minDecryptionVersion: 2 });
    await client.rotateKey('payments');
    await client.scheduleKeyDestruction('payments');
    await client.scheduleVersionDestruction('payments', 3, 7);
    await client.cancelVersionDestruction('payments', 3);

    const [create, get, list, patch, rotate, schedule, scheduleVersion, cancelVersion] = srv.seen;
    assert.equal(create.method, 'POST');
    assert.equal(create.url, '/v1/keys');
    assert.equal(create.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(create.body), { name: 'payments', algorithm: 'aes-256-gcm', labels: { team: 'a' } });
    assert.equal(get.method, 'GET');
    assert.equal(get.url, '/v1/keys/a%2Fb%20c%3F');
    assert.equal(get.headers['content-type'], undefined);
    assert.equal(get.body, '');
    assert.equal(list.url, '/v1/keys?limit=2&cursor=x+y%26z');
    assert.equal(patch.method, 'PATCH');
    assert.deepEqual(JSON.parse(patch.body), { minDecryptionVersion: 2 });
    assert.equal(rotate.url, '/v1/keys/payments/rotate');
    assert.deepEqual(JSON.parse(rotate.body), {});
    assert.equal(schedule.url, '/v1/keys/payments/schedule-destruction');
    assert.deepEqual(JSON.parse(schedule.body), {});
    assert.equal(scheduleVersion.url, '/v1/keys/payments/versions/3/schedule-destruction');
    assert.deepEqual(JSON.parse(scheduleVersion.body), { pendingDays: 7 });
    assert.equal(cancelVersion.url, '/v1/keys/payments/versions/3/cancel-destruction');

    await assert.rejects(client.getKey('..'), TypeError);
    await assert.rejects(client.scheduleVersionDestruction('payments', 1.5), RangeError);
  });

  void it('keeps a path prefix of the base URL', async () => {
    const c = newClient({ baseUrl: `${srv.baseUrl}/kms/` });
    try {
      await c.getKey('k');
      assert.equal(srv.seen[0].url, '/kms/v1/keys/k');
    } finally {
      await c.close();
    }
  });

  void it('round-trips binary values through base64', async () => {
    srv.handler = fakeCrypto;
    const backing = Buffer.alloc(300, 0xee);
    const all = backing.subarray(7, 263);
    for (let i = 0; i < 256; i++) all[i] = i;
    const plaintext = new Uint8Array(all.buffer, all.byteOffset, all.byteLength); // a view with an offset

    const enc = await client.encrypt('payments', plaintext, { tenant: 't1' });
    assert.equal(enc.keyName, 'payments');
    assert.equal(enc.keyVersion, 3);
    const sent = JSON.parse(srv.seen[0].body) as { plaintext: string; context: Record<string, string> };
    assert.equal(sent.plaintext, all.toString('base64'));
    assert.deepEqual(sent.context, { tenant: 't1' });

    const dec = await client.decrypt('payments', enc.ciphertext, { tenant: 't1' });
    assert.ok(Buffer.isBuffer(dec.plaintext));
    assert.deepEqual(dec.plaintext, all);
    assert.equal(dec.keyVersion, 3);
    assert.deepEqual((await client.decryptAny(enc.ciphertext)).plaintext, all);
    assert.equal(srv.seen.at(-1)!.url, '/v1/decrypt');

    const empty = await client.encrypt('payments', new Uint8Array(0));
    assert.equal((JSON.parse(srv.seen.at(-1)!.body) as { context?: unknown }).context, undefined);
    assert.equal((await client.decrypt('payments', empty.ciphertext)).plaintext.length, 0);

    const re = await client.reencrypt('payments', enc.ciphertext);
    assert.equal(re.keyVersion, 4);

    const key = someBytes(32);
    const wrapped = await client.wrapKey('payments', key);
    const unwrapped = await client.unwrapKey('payments', wrapped.ciphertext);
    assert.deepEqual(unwrapped.key, key);

    const dk = await client.generateDataKey('payments', { bytes: 16 });
    assert.equal(dk.plaintext?.length, 16);
    assert.deepEqual((await client.decrypt('payments', dk.ciphertext)).plaintext, dk.plaintext);
    const dkNoPlain = await client.generateDataKey('payments', { withPlaintext: false });
    assert.equal(dkNoPlain.plaintext, undefined);
    assert.deepEqual(JSON.parse(srv.seen.at(-1)!.body), { withPlaintext: false });

    const rnd = await client.random(48);
    assert.ok(Buffer.isBuffer(rnd));
    assert.equal(rnd.length, 48);
  });

  void it('maps error bodies to KeyholdApiError with status, code and requestId', async () => {
    srv.handler = (_req, res) => json(res, 404, errorBody('KEY_NOT_FOUND', 'no key named "nope"', 'req-404'));
    await assert.rejects(client.getKey('nope'), (err: unknown) => {
      assert.ok(err instanceof KeyholdApiError);
      assert.equal(err.status, 404);
      assert.equal(err.code, 'KEY_NOT_FOUND');
      assert.equal(err.requestId, 'req-404');
      assert.equal(err.message, 'no key named "nope"');
      assert.equal(err.method, 'GET');
      assert.equal(err.path, '/v1/keys/nope');
      return true;
    });

    const secret = Buffer.from('top secret plaintext bytes');
    srv.handler = (_req, res) => json(res, 422, errorBody('INVALID_CIPHERTEXT', 'the ciphertext does not authenticate'));
    await assert.rejects(client.encrypt('k', secret, { who: 'ctx-value' }), (err: unknown) => {
      assert.ok(err instanceof KeyholdApiError);
      assert.equal(err.code, 'INVALID_CIPHERTEXT');
      const shown = `${err.message} ${err.stack ?? ''} ${JSON.stringify(err)}`;
      assert.ok(!shown.includes(secret.toString('base64')), 'no plaintext in the error');
      assert.ok(!shown.includes('ctx-value'), 'no context in the error');
      return true;
    });

    srv.handler = (_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html', 'x-request-id': 'edge-1' });
      res.end('<html>Bad gateway</html>');
    };
    await assert.rejects(client.getKey('k'), (err: unknown) => {
      assert.ok(err instanceof KeyholdApiError);
      assert.equal(err.status, 502);
      assert.equal(err.code, 'UNAVAILABLE');
      assert.equal(err.requestId, 'edge-1');
      assert.ok(err.message.includes(srv.baseUrl));
      return true;
    });

    srv.handler = (_req, res) => {
      res.writeHead(500);
      res.end('oops');
    };
    await assert.rejects(client.getKey('k'), { name: 'KeyholdApiError', status: 500, code: 'INTERNAL' });

    srv.handler = (_req, res) => json(res, 503, errorBody('SEALED', 'the master key is sealed'));
    await assert.rejects(client.random(8), { status: 503, code: 'SEALED' });
  });

  void it('returns per-item batch errors as KeyholdItemError, in order', async () => {
    srv.handler = (req, res) => {
      const { items } = JSON.parse(req.body) as { items: Array<{ ciphertext: string }> };
      json(res, 200, {
        results: items.map((item, i) =>
          i === 1
            ? { error: { code: 'INVALID_CIPHERTEXT', message: 'the ciphertext does not authenticate' } }
            : { plaintext: item.ciphertext.slice(FAKE_PREFIX.length), keyName: 'k', keyVersion: 1 },
        ),
      });
    };
    const a = Buffer.from([0, 1, 2, 255]);
    const c = Buffer.from('third');
    const results = await client.decryptBatch('k', [
      { ciphertext: FAKE_PREFIX + a.toString('base64') },
      { ciphertext: 'tampered', context: { x: 'y' } },
      { ciphertext: FAKE_PREFIX + c.toString('base64') },
    ]);
    assert.equal(srv.seen[0].url, '/v1/keys/k/decrypt/batch');
    assert.equal(results.length, 3);
    const [r0, r1, r2] = results;
    assert.ok(!(r0 instanceof KeyholdItemError));
    assert.deepEqual(r0.plaintext, a);
    assert.ok(r1 instanceof KeyholdItemError);
    assert.equal(r1.code, 'INVALID_CIPHERTEXT');
    assert.equal(r1.message, 'the ciphertext does not authenticate');
    assert.ok(!(r2 instanceof KeyholdItemError));
    assert.deepEqual(r2.plaintext, c);

    srv.handler = (req, res) => {
      const { items } = JSON.parse(req.body) as { items: Array<{ plaintext: string }> };
      json(res, 200, {
        results: items.map((item) =>
          item.plaintext === ''
            ? { error: { code: 'VALIDATION_FAILED', message: 'empty' } }
            : { ciphertext: FAKE_PREFIX + item.plaintext, keyName: 'k', keyVersion: 2 },
        ),
      });
    };
    const enc = await client.encryptBatch('k', [{ plaintext: a }, { plaintext: new Uint8Array(0) }]);
    assert.deepEqual(enc[0], { ciphertext: FAKE_PREFIX + a.toString('base64'), keyName: 'k', keyVersion: 2 });
    assert.ok(enc[1] instanceof KeyholdItemError);
    assert.deepEqual(await client.reencryptBatch('k', []), []);

    srv.handler = (_req, res) => json(res, 200, { results: [] });
    await assert.rejects(client.reencryptBatch('k', [{ ciphertext: 'x' }]), { code: 'INTERNAL' });
  });

  void it('follows nextCursor in listAllKeys', async () => {
    srv.handler = (req, res) => {
      const cursor = new URL(req.url, 'https://x').searchParams.get('cursor');
      if (cursor === null) return json(res, 200, { keys: [keyView('a'), keyView('b')], nextCursor: 'c1' });
      if (cursor === 'c1') return json(res, 200, { keys: [keyView('c')], nextCursor: 'c2' });
      return json(res, 200, { keys: [], nextCursor: null });
    };
    const names: string[] = [];
    for await (const key of client.listAllKeys()) names.push(key.name);
    assert.deepEqual(names, ['a', 'b', 'c']);
    assert.deepEqual(
      srv.seen.map((s) => s.url),
      ['/v1/keys', '/v1/keys?cursor=c1', '/v1/keys?cursor=c2'],
    );
  });

  void it('health() answers the JSON document even on 503', async () => {
    srv.handler = (_req, res) => json(res, 503, { status: 'sealed', database: 'up' });
    assert.deepEqual(await client.health(), { status: 'sealed', database: 'up' });
    assert.equal(srv.seen[0].url, '/v1/health');
    srv.handler = (_req, res) => json(res, 403, errorBody('FORBIDDEN', 'no'));
    await assert.rejects(client.health(), { code: 'FORBIDDEN', status: 403 });
  });

  void it('request() answers 4xx/5xx without throwing and can send raw bodies', async () => {
    srv.handler = (_req, res) => json(res, 400, errorBody('VALIDATION_FAILED', 'bad JSON'));
    const res = await client.request<{ error: { code: string } }>('post', '/v1/keys', '{not json');
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'VALIDATION_FAILED');
    assert.equal(res.headers['content-type'], 'application/json');
    assert.equal(srv.seen[0].body, '{not json');
    assert.equal(srv.seen[0].method, 'POST');

    srv.handler = (_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('plain text');
    };
    const text = await client.request<string>('PUT', '/v1/keys/k', { a: 1 }, { headers: { 'Content-Type': 'text/plain' } });
    assert.equal(text.status, 500);
    assert.equal(text.body, 'plain text');
    assert.equal(srv.seen[1].headers['content-type'], 'text/plain');
  });

  void it('times out when the headers do not come', async () => {
    srv.handler = () => {
      /* never answers */
    };
    const c = newClient({ timeoutMs: 200 });
    try {
      const started = Date.now();
      await assert.rejects(c.getKey('k'), (err: unknown) => {
        assert.ok(err instanceof KeyholdNetworkError);
        assert.equal(err.timedOut, true);
        assert.ok(err.message.includes(srv.baseUrl), err.message);
        assert.ok(err.message.includes('200 ms'), err.message);
        assert.ok(err.cause !== undefined);
        return true;
      });
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 150 && elapsed < 2_000, `timed out after ${elapsed} ms`);
    } finally {
      await c.close();
    }
  });

  void it('times out when the body trickles past the deadline', async () => {
    srv.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"name":');
      const tick = setInterval(() => res.write(' '), 50);
      res.on('close', () => clearInterval(tick));
    };
    const c = newClient({ timeoutMs: 300 });
    try {
      const started = Date.now();
      await assert.rejects(c.getKey('k'), { name: 'KeyholdNetworkError', timedOut: true });
      assert.ok(Date.now() - started < 2_000);
    } finally {
      await c.close();
    }
  });

  void it('aborts with the client signal', async () => {
    srv.handler = () => {
      /* never answers */
    };
    const controller = new AbortController();
    const c = newClient({ signal: controller.signal });
    try {
      const pending = c.getKey('k');
      setTimeout(() => controller.abort(), 50);
      await assert.rejects(pending, (err: unknown) => {
        assert.ok(err instanceof KeyholdNetworkError);
        assert.equal(err.timedOut, false);
        assert.match(err.message, /aborted/);
        return true;
      });
      await assert.rejects(c.getKey('k'), { name: 'KeyholdNetworkError', timedOut: false });
    } finally {
      await c.close();
    }
  });

  void it('wraps connection failures with the base URL and keeps the cause', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    const c = newClient({ baseUrl: `https://127.0.0.1:${port}` });
    try {
      await assert.rejects(c.getKey('k'), (err: unknown) => {
        assert.ok(err instanceof KeyholdNetworkError);
        assert.equal(err.timedOut, false);
        assert.ok(err.message.includes(`https://127.0.0.1:${port}`), err.message);
        assert.match(err.message, /ECONNREFUSED/);
        assert.ok(err.cause instanceof Error);
        return true;
      });
    } finally {
      await c.close();
    }
  });

  void it('refuses a server certificate from another CA', async () => {
    const rogue = await startServer(pki.rogueServer, pki.ca.certificatePem);
    const c = newClient({ baseUrl: rogue.baseUrl });
    try {
      await assert.rejects(c.getKey('k'), (err: unknown) => {
        assert.ok(err instanceof KeyholdNetworkError);
        assert.ok(err.message.includes(rogue.baseUrl), err.message);
        assert.ok(err.cause instanceof Error);
        return true;
      });
      assert.equal(rogue.seen.length, 0);
    } finally {
      await c.close();
      await stopServer(rogue);
    }
  });

  void it('fromFiles reads the PEM files', async () => {
    const c = KeyholdClient.fromFiles({
      baseUrl: srv.baseUrl,
      caFile: join(pki.dir, 'ca.crt'),
      certFile: join(pki.dir, 'client.crt'),
      keyFile: join(pki.dir, 'client.key'),
      timeoutMs: 5_000,
    });
    try {
      const key = await c.getKey('k');
      assert.equal(key.name, 'k');
      assert.equal(srv.seen[0].peerCommonName, 'sdk-test-client');
    } finally {
      await c.close();
      await c.close(); // idempotent
    }
    await assert.rejects(c.getKey('k'), KeyholdNetworkError);
  });

  void it('refuses a non-https base URL', () => {
    assert.throws(
      () => new KeyholdClient({ baseUrl: 'http://localhost:8443', ca: 'x', cert: 'y', key: 'z' }),
      TypeError,
    );
  });
});
