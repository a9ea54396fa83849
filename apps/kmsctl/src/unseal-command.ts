import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { UsageError } from './audit-source';

export const UNSEAL_USAGE = `  kmsctl unseal --url https://<admin-host>:8444 [--cacert CA.pem] [--status]
      reads one Shamir unseal share from stdin (typed without echo on a terminal, or piped), submits it to
      POST /api/v1/seal/shares and prints the progress. With --status, only prints GET /api/v1/seal.
      The share is never taken from the command line: it stays out of shell history and the process list.`;

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

/** `kmsctl unseal`: exit 0 when the share was accepted (or with --status, always when answered), 1 when refused. */
export async function unsealCommand(
  options: { url?: string; cacert?: string; status?: boolean },
  io: { out: (line: string) => void; err: (line: string) => void },
): Promise<number> {
  if (!options.url) throw new UsageError('unseal needs --url (the admin listener)');
  const base = new URL(options.url);
  if (base.protocol !== 'https:') throw new UsageError('--url must be an https:// URL (the admin listener)');
  const ca = options.cacert ? readFileSync(options.cacert) : undefined;
  if (options.status) {
    const { status, json } = await call(new URL('/api/v1/seal', base), 'GET', ca);
    if (status !== 200) throw new Error(`GET /api/v1/seal answered ${status}`);
    io.out(describe(json as never));
    return 0;
  }
  let share: string;
  try {
    share = await readShare();
  } catch (error) {
    io.err(`kmsctl: ${(error as Error).message}`);
    return 1;
  }
  const { status, json } = await call(new URL('/api/v1/seal/shares', base), 'POST', ca, { share });
  if (status !== 200) {
    const error = (json as { error?: { code?: string; message?: string } }).error;
    io.err(`kmsctl: refused (${status} ${error?.code ?? ''}): ${error?.message ?? 'no message'}`);
    return 1;
  }
  io.out(describe(json as never));
  return 0;
}
