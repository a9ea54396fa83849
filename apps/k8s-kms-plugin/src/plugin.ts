import type { Server } from 'node:http';
import { KeyholdClient } from '@keyhold/client-sdk';
import { CoalescingUpstream } from './coalescing-upstream';
import type { PluginConfig } from './config';
import { bindUnix, createGrpcServer, drain, selfClient } from './grpc-server';
import { startHealthServer } from './health-server';
import { KeyholdKek } from './keyhold-kek';
import { Logger } from './logger';
import { PluginMetrics } from './metrics';
import { prepareSocketPath, removeSocket, restrictSocket } from './socket';

export interface RunningPlugin {
  kek: KeyholdKek;
  healthPort: number | undefined;
  /** Drains (bounded), removes the socket, closes everything. */
  stop(): Promise<{ forced: boolean }>;
}

export async function startPlugin(config: PluginConfig, logger = new Logger(config.logLevel)): Promise<RunningPlugin> {
  const metrics = new PluginMetrics();
  const client = KeyholdClient.fromFiles({
    baseUrl: config.keyholdUrl,
    caFile: config.caFile,
    certFile: config.certFile,
    keyFile: config.keyFile,
    timeoutMs: config.upstreamTimeoutMs,
    connections: config.upstreamConnections,
  });
  // One request per connection on the wire at a time; calls arriving meanwhile share the next batch request.
  const upstream = new CoalescingUpstream(client, { maxRequestsInFlight: config.upstreamConnections });
  const kek = new KeyholdKek(upstream, config, logger, metrics);
  await kek.start();

  const { removedStale } = await prepareSocketPath(config.socketPath);
  if (removedStale) logger.warn('removed a stale socket file left by an earlier run', { socket: config.socketPath });
  const server = createGrpcServer(kek, logger, metrics);
  // The socket is created 0600 (umask), then given the configured mode and group: never briefly open.
  const umask = process.umask(0o177);
  try {
    await bindUnix(server, config.socketPath);
  } finally {
    process.umask(umask);
  }
  restrictSocket(config.socketPath, config.socketMode, config.socketGroup);

  let health: { server: Server; port: number } | undefined;
  const self = selfClient(config.socketPath);
  if (config.healthAddress) health = await startHealthServer(config.healthAddress, self as never, metrics);
  logger.info('listening', {
    socket: config.socketPath,
    health: health ? `http://${config.healthAddress?.host}:${health.port}` : 'off',
    keyhold: config.keyholdUrl,
    key: config.keyName,
    keyId: kek.currentKeyId ?? null,
  });

  let stopping: Promise<{ forced: boolean }> | undefined;
  return {
    kek,
    healthPort: health?.port,
    stop() {
      stopping ??= (async () => {
        const result = await drain(server, config.drainTimeoutMs);
        removeSocket(config.socketPath);
        kek.stop();
        self.close();
        if (health) {
          health.server.closeAllConnections();
          await new Promise<void>((resolve) => health!.server.close(() => resolve()));
        }
        await client.close();
        return result;
      })();
      return stopping;
    },
  };
}
