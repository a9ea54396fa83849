// What the bare server and the commit floor's servers share (tools/bench/bare-server.mjs,
// tools/bench/commit-floor-server.mjs): one AES-256-GCM encryption per request, JSON answers, a mutual-TLS
// HTTPS server configured from the environment (BARE_CERT, BARE_KEY, BARE_CA, BARE_PORT, BARE_HOST) that
// prints {"listening":<port>} once listening and stops on SIGTERM or SIGINT.
import { createCipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

const KEY = randomBytes(32);

export function answer(res, status, payload) {
  const body = JSON.stringify(payload);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** The one operation of the baseline: base64 of iv | ciphertext | tag under a key of this process. */
export function encrypt(plaintext) {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', KEY, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, ciphertext, cipher.getAuthTag()]).toString('base64');
}

/** Starts the server with `handle(req, res)`; `beforeExit` runs (and is awaited) when it is told to stop. */
export function serveBare(handle, beforeExit = async () => undefined) {
  const server = createServer(
    {
      cert: readFileSync(process.env.BARE_CERT),
      key: readFileSync(process.env.BARE_KEY),
      ca: readFileSync(process.env.BARE_CA),
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
    },
    handle,
  );
  server.keepAliveTimeout = 30_000;
  server.listen(Number(process.env.BARE_PORT ?? 0), process.env.BARE_HOST ?? '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ listening: server.address().port })}\n`);
  });
  const stop = () => {
    server.close(() => void beforeExit().finally(() => process.exit(0)));
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return server;
}
