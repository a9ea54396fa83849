import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';

const USAGE = `usage: keyhold-unseal --url https://<admin-host>:8444 [--cacert <ca.pem>] [--status]
  reads one Shamir unseal share from stdin (typed without echo on a terminal, or piped), submits it to
  POST /api/v1/seal/shares and prints the progress. With --status, only prints GET /api/v1/seal.
  The share is never taken from the command line, so it stays out of shell history and the process list.`;

function readShare(): Promise<string> {
  return new Promise((resolve, reject) => {
    const muted = new Writable({ write: (_chunk, _encoding, done) => done() });
    const terminal = Boolean(process.stdin.isTTY);
    if (terminal) process.stderr.write('unseal share (input hidden): ');
    const lines = createInterface({ input: process.stdin, output: muted, terminal });
    let answered = false;
    lines.once('line', (line) => {
      answered = true;
      if (terminal) process.stderr.write('\n');
      lines.close();
      resolve(line.trim());
    });
    lines.once('close', () => {
      if (!answered) reject(new Error('no share on stdin'));
    });
  });
}

function call(url: URL, method: 'GET' | 'POST', ca: Buffer | undefined, body?: unknown): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(
      url,
      {
        method,
        ca,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
        timeout: 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
          } catch {
            reject(new Error(`${url.origin} answered ${res.statusCode} without JSON; is it Keyhold's admin listener?`));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out after 30 s')));
    req.on('error', reject);
    req.end(payload);
  });
}

function describe(progress: { sealed?: boolean; received?: number; threshold?: number | null; protection?: string }): string {
  if (!progress.sealed) return 'Keyhold is unsealed.';
  if (progress.threshold) return `Keyhold is sealed: ${progress.received} of ${progress.threshold} shares received.`;
  return `Keyhold is sealed (${progress.protection}); restart it to unseal.`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { url: { type: 'string' }, cacert: { type: 'string' }, status: { type: 'boolean' }, help: { type: 'boolean' } },
    strict: true,
  });
  if (values.help || !values.url) throw new Error(USAGE);
  const base = new URL(values.url);
  if (base.protocol !== 'https:') throw new Error('--url must be an https:// URL (the admin listener)');
  const ca = values.cacert ? readFileSync(values.cacert) : undefined;
  if (values.status) {
    const { status, json } = await call(new URL('/api/v1/seal', base), 'GET', ca);
    if (status !== 200) throw new Error(`GET /api/v1/seal answered ${status}`);
    process.stdout.write(`${describe(json as never)}\n`);
    return;
  }
  const share = await readShare();
  const { status, json } = await call(new URL('/api/v1/seal/shares', base), 'POST', ca, { share });
  if (status !== 200) {
    const error = (json as { error?: { code?: string; message?: string } }).error;
    throw new Error(`refused (${status} ${error?.code ?? ''}): ${error?.message ?? 'no message'}`);
  }
  process.stdout.write(`${describe(json as never)}\n`);
}

main().catch((error: Error) => {
  process.stderr.write(`keyhold-unseal: ${error.message}\n`);
  process.exit(1);
});
