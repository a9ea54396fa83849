import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { DataSource } from 'typeorm';
import { MAX_REQUEST_BODY_BYTES } from '@keyhold/contracts';
import { type CertificateClock, type GrantPolicySource, type RateLimit, RateLimiter } from '@keyhold/auth';
import { randomToken } from '@keyhold/crypto-core';
import { type Clock, systemClock } from '@keyhold/key-lifecycle';
import { CryptoOpsService } from './crypto-ops/crypto-ops.service';
import { HealthService } from './health/health.service';
import { KeyChangeListener } from './keyring/key-change-listener';
import { KeyringCache } from './keyring/keyring-cache';
import { UsageRecorder } from './keyring/usage-recorder';
import { KeysService } from './keys/keys.service';
import type { KeyholdLogger } from './logging/logger';
import { TypeormKeyRepository } from './persistence/typeorm-key.repository';
import { LifecycleScheduler } from './scheduler/lifecycle-scheduler';
import type { MasterKey } from './seal/master-key';
import { ServicePlaneModule } from './service-plane.module';

export interface ServiceTls {
  cert: string | Buffer;
  key: string | Buffer;
  /** The CA bundle that client certificates must chain to. */
  clientCa: string | Buffer;
}

export interface KeyholdServerOptions {
  databaseUrl: string;
  dataSource: DataSource;
  masterKey: MasterKey;
  grants: GrantPolicySource;
  logger: KeyholdLogger;
  tls: ServiceTls;
  host: string;
  port: number;
  clock?: Clock;
  keyCache?: { ttlMs: number; maxKeys: number };
  usageFlushIntervalMs?: number;
  schedulerIntervalMs?: number;
  /** Per-identity limit; off when absent or perSecond is 0. */
  rateLimit?: RateLimit;
  /** Wall clock for certificate validity (tests move it to see a certificate expire mid-connection). */
  certificateClock?: CertificateClock;
  /** Tests drive the scheduler by hand with a manual clock. */
  startScheduler?: boolean;
}

export interface KeyholdServer {
  app: NestFastifyApplication;
  url: string;
  port: number;
  keys: KeysService;
  scheduler: LifecycleScheduler;
  cache: KeyringCache;
  usage: UsageRecorder;
  close(): Promise<void>;
}

/** Composition root of the service plane: builds the services, the HTTPS listener, and the background work. */
export async function startKeyholdServer(options: KeyholdServerOptions): Promise<KeyholdServer> {
  const clock = options.clock ?? systemClock;
  const repository = new TypeormKeyRepository(options.dataSource);
  const cache = new KeyringCache(repository, options.masterKey, options.keyCache ?? { ttlMs: 300_000, maxKeys: 10_000 });
  const usage = new UsageRecorder(repository, options.usageFlushIntervalMs ?? 5000, () => clock.now());
  const keys = new KeysService(repository, options.masterKey, cache, usage, clock);
  const crypto = new CryptoOpsService(cache, usage, options.grants);
  const health = new HealthService(options.dataSource, options.masterKey);
  const scheduler = new LifecycleScheduler(options.dataSource, repository, keys, clock, options.schedulerIntervalMs ?? 30_000);
  const listener = new KeyChangeListener({ connectionString: options.databaseUrl }, cache);

  const app = await NestFactory.create<NestFastifyApplication>(
    ServicePlaneModule.register({
      keys,
      crypto,
      health,
      grants: options.grants,
      rateLimiter: new RateLimiter(options.rateLimit ?? { perSecond: 0, burst: 0 }),
      certificateClock: options.certificateClock ?? Date.now,
    }),
    new FastifyAdapter({
      https: {
        cert: options.tls.cert,
        key: options.tls.key,
        ca: options.tls.clientCa,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.2',
      },
      bodyLimit: MAX_REQUEST_BODY_BYTES,
      routerOptions: { maxParamLength: 256 },
      genReqId: requestIdGenerator(),
      logger: false,
      return503OnClosing: true,
    }),
    { logger: options.logger, bufferLogs: false },
  );
  configureFastify(app);

  await listener.start();
  usage.start();
  if (options.startScheduler !== false) scheduler.start();
  await app.listen({ host: options.host, port: options.port });
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : options.port;

  return {
    app,
    url: `https://localhost:${port}`,
    port,
    keys,
    scheduler,
    cache,
    usage,
    async close() {
      // Flush first: with the embedded Postgres, its own exit hook may stop the database moments later.
      await usage.flush();
      await scheduler.stop();
      await app.close();
      await usage.stop();
      await listener.stop();
    },
  };
}

/** Request ids: a random per-process prefix and a counter, unique across instances without a syscall per request. */
function requestIdGenerator(): () => string {
  const prefix = randomToken(6);
  let counter = 0;
  return () => `${prefix}-${(counter += 1).toString(36)}`;
}

/** Fastify settings Nest does not expose; Nest routes Fastify's own errors (parsing, limits) to ApiErrorFilter. */
function configureFastify(app: NestFastifyApplication): void {
  const fastify = app.getHttpAdapter().getInstance();
  // Bodies are JSON; a text/plain body would otherwise arrive as a string and confuse validation.
  fastify.removeContentTypeParser('text/plain');
  fastify.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    void reply.header('x-request-id', request.id);
    done();
  });
}
