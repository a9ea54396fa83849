import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import type { PluginMetrics } from './metrics';

const SELF_STATUS_TIMEOUT_MS = 2000;

type StatusClient = grpc.Client & {
  Status(req: object, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { healthz: string; key_id: string; version: string }) => void): void;
};

/**
 * kubelet and Prometheus (kube-apiserver only speaks gRPC):
 * - `/livez`: the process runs and its socket answers a Status call (any answer, even an error status):
 *   restarting the plugin would not fix Keyhold being away.
 * - `/healthz`, `/readyz`: a Status call through the plugin's own socket, answered `ok` (else 503 and why).
 * - `/metrics`: Prometheus text format.
 */
export async function startHealthServer(
  address: { host: string; port: number },
  client: StatusClient,
  metrics: PluginMetrics,
): Promise<{ server: Server; port: number }> {
  const selfStatus = () =>
    new Promise<{ ok: boolean; answered: boolean; text: string }>((resolve) => {
      client.Status({}, { deadline: Date.now() + SELF_STATUS_TIMEOUT_MS }, (err, res) => {
        if (err) resolve({ ok: false, answered: err.code !== 14 && err.code !== 4, text: `Status: ${err.details || err.message}` });
        else resolve({ ok: res?.healthz === 'ok', answered: true, text: res?.healthz === 'ok' ? 'ok' : `Status healthz: ${res?.healthz}` });
      });
    });

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (code: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n');
    if (path === '/metrics') return send(200, metrics.render(), 'text/plain; version=0.0.4; charset=utf-8');
    if (path === '/livez') {
      void selfStatus().then((s) => send(s.answered ? 200 : 503, s.answered ? 'ok\n' : `${s.text}\n`));
      return;
    }
    if (path === '/healthz' || path === '/readyz') {
      void selfStatus().then((s) => send(s.ok ? 200 : 503, `${s.text}\n`));
      return;
    }
    send(404, 'not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
