import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { dirname, isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';

/** The parts of a kubeconfig this tool uses: one cluster, one user (certificates or a bearer token). */
export interface KubeTarget {
  server: URL;
  ca?: Buffer;
  insecureSkipTlsVerify: boolean;
  tlsServerName?: string;
  cert?: Buffer;
  key?: Buffer;
  token?: string;
  basic?: { username: string; password: string };
}

interface Named<T> {
  name: string;
  [k: string]: unknown;
  value: T;
}

function named<T>(list: unknown, field: string): Array<Named<T>> {
  if (!Array.isArray(list)) return [];
  return list
    .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null)
    .map((e) => ({ name: String(e.name), value: (e[field] ?? {}) as T }));
}

export function loadKubeconfig(path: string, contextName?: string): KubeTarget {
  const base = dirname(path);
  const doc = parseYaml(readFileSync(path, 'utf8')) as Record<string, unknown>;
  if (!doc || typeof doc !== 'object') throw new Error(`${path} is not a kubeconfig`);
  const contexts = named<{ cluster?: string; user?: string }>(doc.contexts, 'context');
  const wanted = contextName ?? (doc['current-context'] as string | undefined);
  const context = wanted ? contexts.find((c) => c.name === wanted) : contexts[0];
  if (!context) throw new Error(`${path}: no context ${wanted ? JSON.stringify(wanted) : ''} in the kubeconfig`);
  const cluster = named<Record<string, unknown>>(doc.clusters, 'cluster').find((c) => c.name === context.value.cluster)?.value;
  if (!cluster || typeof cluster.server !== 'string') throw new Error(`${path}: context ${context.name} names no cluster with a server`);
  const user = named<Record<string, unknown>>(doc.users, 'user').find((u) => u.name === context.value.user)?.value ?? {};
  const file = (p: unknown) => readFileSync(isAbsolute(String(p)) ? String(p) : join(base, String(p)));
  const data = (inline: unknown, filePath: unknown): Buffer | undefined =>
    typeof inline === 'string' ? Buffer.from(inline, 'base64') : filePath !== undefined ? file(filePath) : undefined;
  if (user.exec || user['auth-provider']) {
    throw new Error(`${path}: user of context ${context.name} uses an exec or auth-provider plugin; give a certificate or token kubeconfig`);
  }
  const target: KubeTarget = {
    server: new URL(cluster.server),
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
  };
  const ca = data(cluster['certificate-authority-data'], cluster['certificate-authority']);
  if (ca) target.ca = ca;
  if (typeof cluster['tls-server-name'] === 'string') target.tlsServerName = cluster['tls-server-name'];
  const cert = data(user['client-certificate-data'], user['client-certificate']);
  const key = data(user['client-key-data'], user['client-key']);
  if (cert) target.cert = cert;
  if (key) target.key = key;
  if (typeof user.token === 'string') target.token = user.token;
  else if (typeof user.tokenFile === 'string') target.token = file(user.tokenFile).toString('utf8').trim();
  if (typeof user.username === 'string' && typeof user.password === 'string') target.basic = { username: user.username, password: user.password };
  return target;
}

export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** A minimal Kubernetes API client (JSON over HTTPS, keep-alive). */
export class KubeClient {
  private readonly agent: http.Agent;

  constructor(private readonly target: KubeTarget) {
    const secure = target.server.protocol === 'https:';
    this.agent = secure
      ? new https.Agent({
          keepAlive: true,
          maxSockets: 8,
          ...(target.ca ? { ca: target.ca } : {}),
          ...(target.cert ? { cert: target.cert } : {}),
          ...(target.key ? { key: target.key } : {}),
          ...(target.tlsServerName ? { servername: target.tlsServerName } : {}),
          rejectUnauthorized: !target.insecureSkipTlsVerify,
        })
      : new http.Agent({ keepAlive: true, maxSockets: 8 });
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = new URL(path, this.target.server);
    const prefix = this.target.server.pathname.replace(/\/$/, '');
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'keyhold-kms-plugin/rewrite-secrets' };
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    if (this.target.token) headers.authorization = `Bearer ${this.target.token}`;
    else if (this.target.basic) {
      headers.authorization = `Basic ${Buffer.from(`${this.target.basic.username}:${this.target.basic.password}`).toString('base64')}`;
    }
    const lib = url.protocol === 'https:' ? https : http;
    return new Promise<T>((resolve, reject) => {
      const req = lib.request(
        { method, protocol: url.protocol, hostname: url.hostname, port: url.port, path: prefix + url.pathname + url.search, headers, agent: this.agent, timeout: 30_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown;
            try {
              json = text ? JSON.parse(text) : undefined;
            } catch {
              json = undefined;
            }
            const code = res.statusCode ?? 0;
            if (code >= 200 && code < 300) return resolve(json as T);
            const status = json as { reason?: string; message?: string } | undefined;
            reject(new KubeApiError(code, status?.reason ?? '', `${method} ${url.pathname}: HTTP ${code} ${status?.message ?? text.slice(0, 200)}`));
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${url.pathname}: no answer within 30 s`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
