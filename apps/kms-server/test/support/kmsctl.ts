import { execFile } from 'node:child_process';
import { resolve } from 'node:path';

/** Compiled to apps/kms-server/dist/test/support: the repository root is five levels up. */
const KMSCTL = resolve(__dirname, '..', '..', '..', '..', 'kmsctl', 'dist', 'src', 'main.js');

export interface KmsctlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real `kmsctl` as a child process (no shell), with `env` added to this process's environment. */
export function kmsctl(args: string[], env: Record<string, string> = {}): Promise<KmsctlResult> {
  return new Promise((resolvePromise) => {
    execFile(process.execPath, [KMSCTL, ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolvePromise({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}
