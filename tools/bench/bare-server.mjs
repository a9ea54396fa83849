// The benchmark's baseline: a bare Node `https` server with mutual TLS that does one AES-256-GCM
// encryption per request and nothing else (no framework, no validation library, no database, no
// authorization, no logging). Keyhold's throughput is reported as a fraction of this server's, measured
// by the same load generator in the same run (tools/bench/run-bench.mjs), so the ratio is the figure
// that carries across machines.
//
// Run as a child process of run-bench.mjs (its own event loop), configured by the environment:
//   BARE_CERT, BARE_KEY   server certificate and key (PEM files)
//   BARE_CA               CA that client certificates must chain to (PEM file)
//   BARE_PORT             port to listen on (0 = any free port; default 0)
//   BARE_HOST             address to listen on (default 127.0.0.1)
// Once listening it prints one line to stdout: {"listening":<port>}.
//
// Any POST takes {"plaintext": "<base64>"} and answers 200 {"ciphertext": "<base64 of iv|ct|tag>"}.
// A body over 64 KiB answers 413, bad JSON or a missing plaintext 400: the same limits as Keyhold's API.
import { createCipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

const MAX_BODY_BYTES = 64 * 1024;
const KEY = randomBytes(32);

function answer(res, status, payload) {
  const body = JSON.stringify(payload);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

function encrypt(plaintext) {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', KEY, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, ciphertext, cipher.getAuthTag()]).toString('base64');
}

const server = createServer(
  {
    cert: readFileSync(process.env.BARE_CERT),
    key: readFileSync(process.env.BARE_KEY),
    ca: readFileSync(process.env.BARE_CA),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  },
  (req, res) => {
    if (req.method !== 'POST') return answer(res, 405, { error: { code: 'METHOD_NOT_ALLOWED' } });
    const chunks = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk) => {
      if (refused) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        refused = true;
        answer(res, 413, { error: { code: 'PAYLOAD_TOO_LARGE' } });
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (refused) return;
      let plaintext;
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (typeof body?.plaintext !== 'string') throw new Error('plaintext missing');
        plaintext = Buffer.from(body.plaintext, 'base64');
      } catch {
        return answer(res, 400, { error: { code: 'VALIDATION_FAILED' } });
      }
      answer(res, 200, { ciphertext: encrypt(plaintext) });
    });
  },
);

server.keepAliveTimeout = 30_000;
server.listen(Number(process.env.BARE_PORT ?? 0), process.env.BARE_HOST ?? '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ listening: server.address().port })}\n`);
});

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
