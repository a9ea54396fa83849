import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { KeyholdClient } from '@keyhold/client-sdk';

export const REPO = resolve(__dirname, '../../../../..');
const SERVER_MAIN = join(REPO, 'apps/kms-server/dist/src/main.js');
export const PLUGIN_IDENTITY = 'spiffe://keyhold.local/k8s-kms-plugin';

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function openssl(cwd: string, args: string[]): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A client certificate from the Keyhold home's CA (ECDSA P-256, URI SAN, clientAuth). */
export function issueClientCert(home: string, name: string, uri: string): { cert: string; key: string } {
  writeFileSync(
    join(home, `${name}.ext`),
    ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth', `subjectAltName=URI:${uri}`, ''].join('\n'),
  );
  openssl(home, ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  openssl(home, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', `0x${Date.now().toString(16)}${Math.floor(Math.random() * 1e6).toString(16)}`, '-days', '2', '-out', `${name}.crt`, '-extfile', `${name}.ext`]);
  return { cert: join(home, `${name}.crt`), key: join(home, `${name}.key`) };
}

export interface KeyholdFixture {
  home: string;
  port: number;
  url: string;
  caFile: string;
  plugin: { cert: string; key: string };
  /** The operator (granted everything): creates, rotates, disables keys. */
  operator: KeyholdClient;
  pid(): number | undefined;
  signal(sig: NodeJS.Signals): void;
  /** Starts the server again on the same home and port (after stop or kill). */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** SIGKILL to the whole process group (server and its embedded Postgres). */
  kill(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A real Keyhold: `apps/kms-server` as a child process on a fresh home (its own embedded Postgres). The CA
 * is made first with openssl so that the plugin's certificate and the grants file exist before the first
 * start: the operator may do everything, the plugin may encrypt, decrypt and read the given keys only.
 */
export async function startKeyhold(options: { pluginKeys: string }): Promise<KeyholdFixture> {
  const home = mkdtempSync(join(tmpdir(), 'keyhold-kms-plugin-'));
  openssl(home, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt',
    '-days', '2', '-subj', '/CN=Keyhold test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const plugin = issueClientCert(home, 'plugin', PLUGIN_IDENTITY);
  writeFileSync(
    join(home, 'grants.json'),
    JSON.stringify({
      grants: [
        { identity: 'spiffe://keyhold.local/operator', keys: '*', operations: ['*'] },
        { identity: PLUGIN_IDENTITY, keys: options.pluginKeys, operations: ['encrypt', 'decrypt', 'read'] },
      ],
    }),
    { mode: 0o600 },
  );
  const port = await freePort();
  const pgPort = await freePort();
  const adminPort = await freePort();
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = '';
  let operator: KeyholdClient | undefined;

  const serverEnv = () => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_ENV: 'development',
      KEYHOLD_HOME: home,
      KEYHOLD_SERVICE_PORT: String(port),
      KEYHOLD_EMBEDDED_POSTGRES_PORT: String(pgPort),
      KEYHOLD_ADMIN_PORT: String(adminPort), // the admin listener: never the shared default 8444
      KEYHOLD_LOG_LEVEL: 'warn',
    };
    delete env.DATABASE_URL; // its own embedded Postgres under KEYHOLD_HOME
    return env;
  };
  const fixture: KeyholdFixture = {
    home,
    port,
    url: `https://localhost:${port}`,
    caFile: join(home, 'ca.crt'),
    plugin,
    get operator() {
      return operator as KeyholdClient;
    },
    pid: () => child?.pid,
    signal(sig) {
      if (child?.pid) process.kill(-child.pid, sig);
    },
    async start() {
      output = '';
      child = spawn(process.execPath, [SERVER_MAIN], {
        cwd: REPO,
        env: serverEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      const c = child;
      c.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20000)));
      c.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20000)));
      exited = new Promise((r) => c.on('exit', () => r()));
      const deadline = Date.now() + 90_000;
      for (;;) {
        if (c.exitCode !== null || c.signalCode !== null) throw new Error(`Keyhold exited while starting:\n${output}`);
        if (Date.now() > deadline) {
          await fixture.kill();
          throw new Error(`Keyhold did not become healthy in 90 s:\n${output}`);
        }
        try {
          operator ??= existsSync(join(home, 'operator.key'))
            ? KeyholdClient.fromFiles({
                baseUrl: fixture.url,
                caFile: fixture.caFile,
                certFile: join(home, 'operator.crt'),
                keyFile: join(home, 'operator.key'),
                timeoutMs: 5000,
              })
            : undefined;
          if (!operator) throw new Error('not yet');
          const h = await operator.health();
          if (h.status === 'ok' || h.status === 'healthy') return;
        } catch {
          // not yet (or the operator certificate is not written yet)
        }
        await sleep(200);
      }
    },
    async stop() {
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<string>((r) => (timer = setTimeout(() => r('timeout'), 20_000)));
      const first = await Promise.race([exited, timeout]);
      clearTimeout(timer);
      if (first === 'timeout') await fixture.kill();
    },
    async kill() {
      if (!child?.pid) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone
      }
      await exited;
      // Its embedded Postgres (same process group) is gone too; wait for the port to be released.
      await sleep(300);
    },
    async close() {
      await fixture.stop();
      await operator?.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
  await fixture.start();
  return fixture;
}
