import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_LOADER_OPTIONS, PROTO_PATH } from '../../src/grpc-server';
import { type KeyholdFixture, REPO, freePort, sleep } from './keyhold-fixture';

const PLUGIN_MAIN = join(REPO, 'apps/k8s-kms-plugin/dist/src/main.js');

export interface StatusResponse {
  version: string;
  healthz: string;
  key_id: string;
}
export interface EncryptResponse {
  ciphertext: Buffer;
  key_id: string;
  annotations: Record<string, Buffer>;
}

/** A grpc-js client of v2.KeyManagementService with promise methods and a per-call deadline. */
export class KmsClient {
  readonly raw: grpc.Client & Record<string, (...args: unknown[]) => unknown>;

  constructor(socketPath: string, options: grpc.ChannelOptions = { 'grpc.default_authority': 'localhost' }) {
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_PATH, PROTO_LOADER_OPTIONS)) as unknown as {
      v2: { KeyManagementService: grpc.ServiceClientConstructor };
    };
    this.raw = new pkg.v2.KeyManagementService(`unix:${socketPath}`, grpc.credentials.createInsecure(), options) as never;
  }

  private call<T>(method: string, request: object, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      this.raw[method](request, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res)));
    });
  }

  status(timeoutMs = 3000): Promise<StatusResponse> {
    return this.call('Status', {}, timeoutMs);
  }
  encrypt(plaintext: Buffer, uid = 'test-uid', timeoutMs = 3000): Promise<EncryptResponse> {
    return this.call('Encrypt', { plaintext, uid }, timeoutMs);
  }
  async decrypt(req: { ciphertext: Buffer; key_id: string; annotations?: Record<string, Buffer>; uid?: string }, timeoutMs = 3000): Promise<Buffer> {
    const res = await this.call<{ plaintext: Buffer }>('Decrypt', { uid: 'test-uid', annotations: {}, ...req }, timeoutMs);
    return res.plaintext;
  }
  close(): void {
    this.raw.close();
  }
}

export interface PluginProcess {
  socketPath: string;
  healthPort: number;
  child: ChildProcess;
  /** Everything the plugin wrote to stdout and stderr. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  client: KmsClient;
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function pluginEnv(keyhold: KeyholdFixture, keyName: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    KEYHOLD_URL: keyhold.url,
    KEYHOLD_CA_FILE: keyhold.caFile,
    KEYHOLD_CERT_FILE: keyhold.plugin.cert,
    KEYHOLD_KEY_FILE: keyhold.plugin.key,
    KEYHOLD_KMS_KEY: keyName,
    KEYHOLD_KMS_REFRESH_INTERVAL_SECONDS: '1',
    KEYHOLD_KMS_PROBE_INTERVAL_SECONDS: '5',
    KEYHOLD_KMS_LOG_LEVEL: 'debug',
    ...extra,
  };
}

/** Starts the built plugin as a child process and waits until its socket answers Status (any answer). */
export async function startPlugin(env: Record<string, string>, options: { socketPath?: string; waitReady?: boolean } = {}): Promise<PluginProcess> {
  const socketPath = options.socketPath ?? join(mkdtempSync(join(tmpdir(), 'kms-sock-')), 'run', 'kms.sock');
  const healthPort = await freePort();
  let output = '';
  const child = spawn(process.execPath, [PLUGIN_MAIN], {
    cwd: REPO,
    env: {
      PATH: process.env.PATH ?? '',
      KEYHOLD_KMS_LISTEN: `unix://${socketPath}`,
      KEYHOLD_KMS_HEALTH_ADDR: `127.0.0.1:${healthPort}`,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  const client = new KmsClient(socketPath);
  const proc: PluginProcess = {
    socketPath,
    healthPort,
    child,
    output: () => output,
    exited,
    client,
    async stop() {
      client.close();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
  if (options.waitReady === false) return proc;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`plugin exited with ${child.exitCode}:\n${output}`);
    if (existsSync(socketPath)) {
      try {
        await client.status(1000);
        return proc;
      } catch (error) {
        if ((error as grpc.ServiceError).code !== grpc.status.UNAVAILABLE || /no key_id|unreachable/.test((error as Error).message)) return proc;
      }
    }
    if (Date.now() > deadline) throw new Error(`plugin did not answer on ${socketPath} in 30 s:\n${output}`);
    await sleep(50);
  }
}

export async function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

/** Polls `check` until it returns true (or throws after `timeoutMs`). */
export async function eventually(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000, stepMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(stepMs);
  }
}
