// The floor for the plugin round trip: a grpc-js server on a unix socket serving the plugin's own
// v2.KeyManagementService proto and answering every call at once (no validation, no Keyhold, no crypto),
// with answers the size of the plugin's. Whatever a client measures against it is the cost of gRPC itself
// (client, HTTP/2, unix socket, grpc-js server) on this machine: no plugin can be faster.
//
//   node tools/bench/grpc-floor-server.mjs SOCKET_PATH     prints "ready" on stdout once listening
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const socketPath = process.argv[2];
const proto = join(dirname(fileURLToPath(import.meta.url)), '../../apps/k8s-kms-plugin/proto/kms-v2.proto');
const { v2 } = grpc.loadPackageDefinition(protoLoader.loadSync(proto, { keepCase: true, defaults: true }));
const keyId = 'floor-key-id-0123456789abcdef';
const ciphertext = Buffer.alloc(190, 7); // about what the plugin answers for a 32-byte seed
const seed = Buffer.alloc(32, 1);
const annotations = { 'keyhold.dev/format': Buffer.from('1') };

rmSync(socketPath, { force: true });
const server = new grpc.Server();
server.addService(v2.KeyManagementService.service, {
  Status: (_call, done) => done(null, { version: 'v2', healthz: 'ok', key_id: keyId }),
  Encrypt: (_call, done) => done(null, { ciphertext, key_id: keyId, annotations }),
  Decrypt: (_call, done) => done(null, { plaintext: seed }),
});
server.bindAsync(`unix:${socketPath}`, grpc.ServerCredentials.createInsecure(), (error) => {
  if (error) throw error;
  process.stdout.write('ready\n');
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
