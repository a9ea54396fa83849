import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PluginError } from './errors';
import type { KeyholdKek } from './keyhold-kek';
import type { Logger } from './logger';
import type { PluginMetrics } from './metrics';

/** The project's own copy of the upstream proto (apps/k8s-kms-plugin/proto), next to dist/. */
export const PROTO_PATH = join(__dirname, '..', '..', 'proto', 'kms-v2.proto');

export const PROTO_LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

export function loadKmsService(): grpc.ServiceDefinition {
  const definition = protoLoader.loadSync(PROTO_PATH, PROTO_LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    v2: { KeyManagementService: grpc.ServiceClientConstructor };
  };
  return pkg.v2.KeyManagementService.service;
}

interface DecryptRequest {
  ciphertext: Buffer;
  uid: string;
  key_id: string;
  annotations: Record<string, Buffer>;
}
interface EncryptRequest {
  plaintext: Buffer;
  uid: string;
}

function deadlineOf(call: grpc.ServerUnaryCall<unknown, unknown>): number {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : Number(d);
  return Number.isFinite(ms) ? ms : Infinity;
}

/**
 * The v2.KeyManagementService handlers. Every RPC is timed and counted by method and code; the log line of
 * a failure carries the uid, the code and the reason, never a plaintext, a ciphertext or annotation values.
 */
export function kmsHandlers(kek: KeyholdKek, logger: Logger, metrics: PluginMetrics): grpc.UntypedServiceImplementation {
  function unary<Req, Res>(
    method: string,
    handle: (request: Req, deadline: number) => Promise<Res> | Res,
    after?: (response: Res) => void,
  ): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      const started = process.hrtime.bigint();
      const uid = (call.request as { uid?: string }).uid ?? '';
      const finish = (code: grpc.status) => {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        metrics.rpcDuration.observe({ method, code: grpc.status[code] }, seconds);
        metrics.rpcTotal.inc({ method, code: grpc.status[code] });
      };
      Promise.resolve()
        .then(() => handle(call.request, deadlineOf(call)))
        .then(
          (response) => {
            callback(null, response);
            finish(grpc.status.OK);
            // The answer is serialised by now: wipe what can be wiped (best effort; Node copies freely).
            after?.(response);
          },
          (error: unknown) => {
            const e = error instanceof PluginError ? error : new PluginError(grpc.status.INTERNAL, `unexpected: ${(error as Error)?.message}`);
            callback({ code: e.code, details: e.message });
            finish(e.code);
            const level = e.code === grpc.status.INVALID_ARGUMENT ? 'info' : 'warn';
            logger[level](`${method} failed`, { method, uid, code: grpc.status[e.code], error: e.message });
          },
        );
    };
  }

  return {
    Status: unary('Status', () => kek.status()),
    Encrypt: unary<EncryptRequest, { ciphertext: Buffer; key_id: string; annotations: Record<string, Buffer> }>(
      'Encrypt',
      async (req, deadline) => {
        try {
          const answer = await kek.encrypt(req.plaintext, req.uid, deadline);
          logger.info('Encrypt', { uid: req.uid, keyId: answer.key_id });
          return answer;
        } finally {
          req.plaintext.fill(0);
        }
      },
    ),
    Decrypt: unary<DecryptRequest, { plaintext: Buffer }>(
      'Decrypt',
      async (req, deadline) => ({ plaintext: await kek.decrypt(req.ciphertext, req.key_id, req.annotations, req.uid, deadline) }),
      (response) => response.plaintext.fill(0),
    ),
  };
}

export function createGrpcServer(kek: KeyholdKek, logger: Logger, metrics: PluginMetrics): grpc.Server {
  const server = new grpc.Server({
    // The apiserver sends 32-byte seeds; anything near this is not a KMS v2 request.
    'grpc.max_receive_message_length': 64 * 1024,
  });
  server.addService(loadKmsService(), kmsHandlers(kek, logger, metrics));
  return server;
}

export function bindUnix(server: grpc.Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`unix:${path}`, grpc.ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve()));
  });
}

/** Stops taking calls, lets in-flight ones finish for at most `timeoutMs`, then cuts the rest off. */
export function drain(server: grpc.Server, timeoutMs: number): Promise<{ forced: boolean }> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve({ forced: true });
    }, timeoutMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve({ forced: false });
    });
  });
}

/** A client of our own socket: the HTTP health endpoint dials it, so /healthz proves the socket answers. */
export function selfClient(path: string): grpc.Client & Record<string, grpc.MethodDefinition<unknown, unknown>> {
  const definition = protoLoader.loadSync(PROTO_PATH, PROTO_LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { v2: { KeyManagementService: grpc.ServiceClientConstructor } };
  return new pkg.v2.KeyManagementService(`unix:${path}`, grpc.credentials.createInsecure(), {
    'grpc.default_authority': 'localhost',
  }) as never;
}
