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
import { answer, encrypt, serveBare } from './bare-https.mjs';

const MAX_BODY_BYTES = 64 * 1024;

serveBare((req, res) => {
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
});
