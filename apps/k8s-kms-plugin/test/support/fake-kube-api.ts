// A fake Kubernetes API server (HTTPS, bearer token) holding Secrets the way kube-apiserver does: every
// write goes through the KMS v2 envelope emulator (so the stored value carries the key_id of the moment),
// every read decrypts. Pagination (limit/continue), resourceVersion conflicts (409) and deletions (404)
// behave like the real API, and hooks let a test change or delete a Secret between list and update.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { ApiserverEmulator } from './apiserver-emulator';

interface Stored {
  namespace: string;
  name: string;
  resourceVersion: number;
  value: Buffer; // what etcd would hold: k8s:enc:kms:v2:<provider>:<EncryptedObject>
}

export interface FakeKubeApi {
  url: string;
  kubeconfigPath: string;
  store: Map<string, Stored>;
  requests: string[];
  /** Called after each list page is served (to simulate concurrent writers). */
  afterList?: () => Promise<void> | void;
  create(namespace: string, name: string, data: Record<string, string>): void;
  touch(namespace: string, name: string): void;
  close(): Promise<void>;
}

export async function startFakeKubeApi(emulator: ApiserverEmulator, pki: { dir: string }): Promise<FakeKubeApi> {
  const dir = pki.dir;
  writeFileSync(join(dir, 'kube.ext'), 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n');
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'kube.key', '-out', 'kube.csr', '-subj', '/CN=kube-apiserver']);
  run(['x509', '-req', '-in', 'kube.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', '0x4b', '-days', '2', '-out', 'kube.crt', '-extfile', 'kube.ext']);
  const token = 'fake-admin-token';
  const store = new Map<string, Stored>();
  const requests: string[] = [];
  let rv = 100;
  const path = (ns: string, name: string) => `/registry/secrets/${ns}/${name}`;

  const toObject = async (s: Stored) => {
    const { data } = await emulator.read(path(s.namespace, s.name), s.value);
    const body = JSON.parse(data.toString()) as { data: Record<string, string> };
    return { metadata: { name: s.name, namespace: s.namespace, resourceVersion: String(s.resourceVersion) }, type: 'Opaque', data: body.data };
  };
  const write = (ns: string, name: string, data: Record<string, string>) => {
    rv += 1;
    store.set(`${ns}/${name}`, { namespace: ns, name, resourceVersion: rv, value: emulator.write(path(ns, name), Buffer.from(JSON.stringify({ data }))) });
  };

  const api: Partial<FakeKubeApi> = { store, requests };
  const json = (res: ServerResponse, code: number, body: unknown) => {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const status = (res: ServerResponse, code: number, reason: string, message: string) =>
    json(res, code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    requests.push(`${req.method} ${req.url}`);
    if (req.headers.authorization !== `Bearer ${token}`) return status(res, 401, 'Unauthorized', 'Unauthorized');
    const url = new URL(req.url ?? '/', 'https://x');
    const one = /^\/api\/v1\/namespaces\/([^/]+)\/secrets\/([^/]+)$/.exec(url.pathname);
    const list = /^\/api\/v1\/(?:namespaces\/([^/]+)\/)?secrets$/.exec(url.pathname);
    if (req.method === 'GET' && list) {
      const ns = list[1];
      const all = [...store.values()].filter((s) => !ns || s.namespace === ns).sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
      const limit = Number(url.searchParams.get('limit') ?? all.length) || all.length;
      // Like etcd's continue token: the last key served, so deletions meanwhile never shift a page.
      const after = url.searchParams.get('continue') ?? '';
      const rest = all.filter((s) => `${s.namespace}/${s.name}` > after);
      const page = rest.slice(0, limit);
      const more = rest.length > limit;
      const last = page[page.length - 1];
      const items = await Promise.all(page.map(toObject));
      json(res, 200, {
        kind: 'SecretList',
        apiVersion: 'v1',
        metadata: { resourceVersion: String(rv), ...(more ? { continue: `${last.namespace}/${last.name}`, remainingItemCount: rest.length - limit } : {}) },
        items,
      });
      await api.afterList?.();
      return;
    }
    if (one) {
      const key = `${decodeURIComponent(one[1])}/${decodeURIComponent(one[2])}`;
      const current = store.get(key);
      if (!current) return status(res, 404, 'NotFound', `secrets "${one[2]}" not found`);
      if (req.method === 'GET') return json(res, 200, await toObject(current));
      if (req.method === 'PUT') {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { kind?: string; metadata: { resourceVersion?: string }; data: Record<string, string> };
        if (body.kind !== 'Secret') return status(res, 400, 'BadRequest', 'kind must be Secret');
        if (body.metadata.resourceVersion !== String(current.resourceVersion)) {
          return status(res, 409, 'Conflict', 'Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again');
        }
        write(current.namespace, current.name, body.data);
        return json(res, 200, await toObject(store.get(key)!));
      }
    }
    status(res, 404, 'NotFound', 'the server could not find the requested resource');
  };

  const server: Server = createServer({ key: readFileSync(join(dir, 'kube.key')), cert: readFileSync(join(dir, 'kube.crt')) }, (req, res) => {
    handle(req, res).catch((error: Error) => status(res, 500, 'InternalError', error.message));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const kubeconfigPath = join(dir, 'kubeconfig.yaml');
  writeFileSync(
    kubeconfigPath,
    [
      'apiVersion: v1',
      'kind: Config',
      'current-context: fake',
      'clusters:',
      '- name: fake',
      '  cluster:',
      `    server: ${url}`,
      '    certificate-authority: ca.crt',
      'users:',
      '- name: admin',
      '  user:',
      `    token: ${token}`,
      'contexts:',
      '- name: fake',
      '  context: {cluster: fake, user: admin}',
      '',
    ].join('\n'),
  );
  Object.assign(api, {
    url,
    kubeconfigPath,
    create: (ns: string, name: string, data: Record<string, string>) => write(ns, name, data),
    touch: (ns: string, name: string) => {
      const s = store.get(`${ns}/${name}`);
      if (s) s.resourceVersion = ++rv;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  });
  return api as FakeKubeApi;
}
