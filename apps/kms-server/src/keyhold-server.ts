import { createServer as createHttpsServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest, FastifyServerOptions, RawServerDefault } from 'fastify';
import type { DataSource } from 'typeorm';
import { type Grant, MAX_REQUEST_BODY_BYTES, type ShamirSealFile } from '@keyhold/contracts';
import { type CertificateClock, type RateLimit, RateLimiter, WebAuthnCeremonies } from '@keyhold/auth';
import { publicKeyFingerprint, randomToken } from '@keyhold/crypto-core';
import { type Clock, systemClock } from '@keyhold/key-lifecycle';
import { AdminRepository } from './admin/admin.repository';
import { registerAdminConsole } from './admin/admin-console';
import { AdminAuthService } from './admin/admin-auth.service';
import { AdminPlaneModule } from './admin/admin-plane.module';
import { AdminSessions } from './admin/admin-sessions';
import { ApprovalsService } from './admin/approvals.service';
import { PostgresChallengeStore } from './admin/challenge-store';
import { CryptoHttpHandler } from './crypto-ops/crypto-http-handler';
import { CryptoOpsService } from './crypto-ops/crypto-ops.service';
import { HealthService } from './health/health.service';
import { NotificationListener, type NotificationListenerOptions } from './database/notification-listener';
import { PeriodicResync, RESYNC_INTERVAL_MS } from './database/periodic-resync';
import {
  CERTIFICATE_REVOKED_CHANNEL,
  CertificateAuthorityService,
  certificateAuthorityRewrapTarget,
} from './service-identities/certificate-authority.service';
import { DatabaseGrantPolicySource } from './service-identities/database-grant-policy-source';
import { GRANTS_CHANGED_CHANNEL, GrantsRepository } from './service-identities/grants.repository';
import { RevocationList } from './service-identities/revocation-list';
import { KeyringCache } from './keyring/keyring-cache';
import { UsageRecorder } from './keyring/usage-recorder';
import { KeysService } from './keys/keys.service';
import type { KeyholdLogger } from './logging/logger';
import { KEY_CHANGED_CHANNEL, TypeormKeyRepository } from './persistence/typeorm-key.repository';
import { LifecycleScheduler } from './scheduler/lifecycle-scheduler';
import type { MasterKey } from './seal/master-key';
import { SealGeneration } from './seal/seal-generation';
import { SEAL_CHANNEL, SealState } from './seal/seal-state';
import { MasterKeyRing, MasterKeyRootMismatchError } from './seal/master-key-ring';
import { MasterKeyRewrapJob, type RewrapOptions } from './master-key/master-key-rewrap';
import { MASTER_KEY_CHANGED_CHANNEL, MasterKeyService, readMasterKeyVersions } from './master-key/master-key.service';
import { type RewrapTarget, keyVersionsTarget } from './master-key/rewrap-targets';
import { ShamirUnsealer } from './seal/shamir-seal';
import { ServicePlaneModule } from './service-plane.module';
import { AuditCheckpointer, type CheckpointPolicy, DEFAULT_CHECKPOINT_POLICY } from './audit/audit-checkpointer';
import { AuditExporter } from './audit/audit-export';
import { checkArchiveFolder } from './audit/audit-archive';
import { AuditPruner, DEFAULT_AUDIT_MIN_RETENTION_DAYS, DEFAULT_RETENTION_INTERVAL_MS } from './audit/audit-pruner';
import { registerRequestMetrics } from './metrics/request-metrics';
import { ServerMetrics } from './metrics/server-metrics';
import { AuditKeys, auditKeysRewrapTarget } from './audit/audit-keys';
import { AuditQueries } from './audit/audit-queries';
import { SystemAuditScope } from './audit/audit-scope';
import { AuditTrail, DEFAULT_GROUP_COMMIT } from './audit/audit-trail';
import type { GroupCommitOptions } from './audit/group-committer';
import { RequestRecorder, registerAuditHooks } from './audit/request-audit';

export interface ServiceTls {
  cert: string | Buffer;
  key: string | Buffer;
  /** The CA bundle that client certificates must chain to. */
  clientCa: string | Buffer;
}

export interface AdminListenerOptions {
  host: string;
  port: number;
  cert: string | Buffer;
  key: string | Buffer;
  /** When set, the admin listener also demands a client certificate chaining to this bundle. */
  requireClientCa?: string | Buffer;
  /** WebAuthn relying party: the host name admins see, and the exact origins their browsers send. */
  rpId: string;
  origins: string[];
  /** The origin Keyhold prints in setup and invitation links. */
  publicOrigin: string;
  /** The built admin console served at `/` (default: apps/admin-console/dist). */
  consoleDir?: string;
}

export interface KeyholdServerOptions {
  databaseUrl: string;
  dataSource: DataSource;
  /** An unsealed master key; or `seal`, for a Keyhold that may start sealed. One of the two. */
  masterKey?: MasterKey;
  seal?: { state: SealState; shamir?: ShamirSealFile | null; shareTimeoutMs?: number };
  /** Grants from the grants file; those managed on the admin plane come from Postgres on top of them. */
  fileGrants: readonly Grant[];
  logger: KeyholdLogger;
  tls: ServiceTls;
  host: string;
  port: number;
  clock?: Clock;
  keyCache?: { ttlMs: number; maxKeys: number };
  usageFlushIntervalMs?: number;
  schedulerIntervalMs?: number;
  /**
   * How often grants, revocations, the seal generation and the master-key versions are re-read whatever notifications arrived: the bound
   * on how long a lost notification can leave this instance behind (default RESYNC_INTERVAL_MS).
   */
  resyncIntervalMs?: number;
  /** The notification connection's heartbeat (tests shorten it; defaults in notification-listener.ts). */
  listenerHeartbeat?: NotificationListenerOptions;
  /** Per-identity limit; off when absent or perSecond is 0. */
  rateLimit?: RateLimit;
  /** Wall clock for certificate validity (tests move it to see a certificate expire mid-connection). */
  certificateClock?: CertificateClock;
  /** Tests drive the scheduler by hand with a manual clock. */
  startScheduler?: boolean;
  /** The admin listener; omitted, only the service plane runs. */
  admin?: AdminListenerOptions;
  /** Sign-in, enrolment and recovery attempts per source address. */
  signInRateLimit?: RateLimit;
  /** The background rewrap after a master-key rotation (it runs with the scheduler; tests call runOnce). */
  masterKeyRewrap?: RewrapOptions;
  /** The audit trail: on unless `enabled: false` (development only: the config refuses it in production). */
  audit?: {
    enabled?: boolean;
    groupCommit?: GroupCommitOptions;
    checkpoints?: CheckpointPolicy;
    minRetentionDays?: number;
    /** How often the standing retention looks for records to prune (it runs with the scheduler). */
    retentionIntervalMs?: number;
    /** Every prune first archives what it removes in this folder (checked at start: it must be writable). */
    archiveDir?: string;
  };
}

export interface KeyholdAudit {
  trail: AuditTrail;
  keys: AuditKeys;
  checkpointer: AuditCheckpointer;
  queries: AuditQueries;
  /** Null with the trail off: there is nothing to prune. */
  pruner: AuditPruner | null;
}

/**
 * Everything stored wrapped or sealed under a master-key version: the rewrap job moves each onto the newest
 * version, and a version is retired only once none of them references it. Add a target here.
 */
export const REWRAP_TARGETS: readonly RewrapTarget[] = [keyVersionsTarget, certificateAuthorityRewrapTarget, auditKeysRewrapTarget];

const DEFAULT_REWRAP: RewrapOptions = { batchSize: 100, paceMs: 20, intervalMs: 60_000 };

export interface KeyholdServer {
  app: NestFastifyApplication;
  url: string;
  port: number;
  keys: KeysService;
  scheduler: LifecycleScheduler;
  cache: KeyringCache;
  usage: UsageRecorder;
  identities: {
    grants: GrantsRepository;
    grantPolicy: DatabaseGrantPolicySource;
    authority: CertificateAuthorityService;
    revocations: RevocationList;
  };
  admin: { app: NestFastifyApplication; url: string; port: number; auth: AdminAuthService; setupLink: string | null } | null;
  seal: { state: SealState; unsealer: ShamirUnsealer | null; generation: SealGeneration };
  masterKey: { ring: MasterKeyRing; service: MasterKeyService; rewrap: MasterKeyRewrapJob };
  audit: KeyholdAudit;
  /** The LISTEN connection and the periodic backstop behind it. */
  notifications: { listener: NotificationListener; resync: PeriodicResync };
  close(): Promise<void>;
}

/** Composition root of the service plane: builds the services, the HTTPS listener, and the background work. */
export async function startKeyholdServer(options: KeyholdServerOptions): Promise<KeyholdServer> {
  // Services log through Nest's Logger before any Nest app exists: route them to ours (JSON, redaction) now.
  Logger.overrideLogger(options.logger);
  const clock = options.clock ?? systemClock;
  const sealState = options.seal?.state ?? sealStateOf(options.masterKey);
  const unsealer = options.seal?.shamir ? new ShamirUnsealer(options.seal.shamir, sealState, options.seal.shareTimeoutMs) : null;
  // Everything below holds the keyring, never a key: sealed, each use throws SEALED.
  const masterKey = new MasterKeyRing(sealState, () => readMasterKeyVersions(options.dataSource));
  const repository = new TypeormKeyRepository(options.dataSource);
  const cache = new KeyringCache(repository, masterKey, options.keyCache ?? { ttlMs: 300_000, maxKeys: 10_000 });
  const rewrap = new MasterKeyRewrapJob(options.dataSource, masterKey, REWRAP_TARGETS, options.masterKeyRewrap ?? DEFAULT_REWRAP, () => !masterKey.loaded);
  // First listener, so that the keyring is loaded before anything else uses it after unsealing.
  sealState.onChange(async (sealed) => {
    if (sealed) {
      cache.clear();
      masterKey.clear();
      return;
    }
    try {
      await masterKey.load();
    } catch (error) {
      // Rethrown: SealState then seals again and fails the unseal, rather than leave a half-unsealed instance.
      Logger.error({ msg: 'the unsealed root does not open the master-key versions; sealing again', err: (error as Error).message }, 'Seal');
      throw error;
    }
    // A rewrap a crash interrupted resumes as soon as the keys are there.
    rewrap.trigger();
  });
  // Started unsealed (file, PKCS#11): a root that does not fit the database stops the start here.
  if (!sealState.sealed) await masterKey.load();
  const usage = new UsageRecorder(repository, options.usageFlushIntervalMs ?? 5000, () => clock.now());
  const audit = await startAudit(options, masterKey, sealState, clock);
  const keys = new KeysService(repository, masterKey, cache, usage, clock, new SystemAuditScope(audit.trail, 'system:scheduler', () => clock.now()));
  const grantsRepository = new GrantsRepository(options.dataSource);
  const grants = new DatabaseGrantPolicySource(options.fileGrants, grantsRepository);
  const wallClock = options.certificateClock ?? Date.now;
  // Certificates live in real time (TLS checks them against it), not on the lifecycle clock tests move.
  const authority = new CertificateAuthorityService(options.dataSource, masterKey, () => new Date(wallClock()), bootstrapAuditScope(audit.trail, clock));
  const revocations = new RevocationList(authority);
  const crypto = new CryptoOpsService(cache, usage, grants);
  const health = new HealthService(options.dataSource, sealState, {
    masterKey: () => ({ version: masterKey.loaded ? masterKey.version : null, rewrap: rewrap.status().state }),
    audit: audit.trail.enabled ? () => ({ signing: audit.checkpointer.signingStatus().status }) : undefined,
  });
  const masterKeys = new MasterKeyService(options.dataSource, masterKey, REWRAP_TARGETS, rewrap, () => clock.now());
  /** Re-reads the master-key versions (a rotation or retirement elsewhere); logs and keeps the keyring on failure. */
  const reloadMasterKeyVersions = async (): Promise<boolean> => {
    if (sealState.sealed) return false;
    try {
      await masterKey.load();
      return true;
    } catch (error) {
      Logger.error(
        {
          msg:
            error instanceof MasterKeyRootMismatchError
              ? 'the root master key was rekeyed: this instance keeps the versions it holds; restart it with the new root'
              : 'cannot reload the master-key versions',
          err: (error as Error).message,
        },
        'MasterKey',
      );
      return false;
    }
  };
  const reloadKeyring = () => {
    void reloadMasterKeyVersions().then((reloaded) => reloaded && rewrap.trigger());
  };
  const scheduler = new LifecycleScheduler(options.dataSource, repository, keys, clock, options.schedulerIntervalMs ?? 30_000, () => sealState.sealed);
  const listener = new NotificationListener({ connectionString: options.databaseUrl }, options.listenerHeartbeat);
  listener.subscribe(KEY_CHANGED_CHANNEL, (name) => cache.invalidate(name));
  listener.subscribe(GRANTS_CHANGED_CHANNEL, () => void grants.reload());
  listener.subscribe(CERTIFICATE_REVOKED_CHANNEL, (fingerprint) => revocations.add(fingerprint));
  const sealGeneration = new SealGeneration(options.dataSource);
  await sealGeneration.load();
  listener.subscribe(SEAL_CHANNEL, (payload) => {
    sealGeneration.noticed(payload);
    void sealState.seal();
  });
  listener.subscribe(MASTER_KEY_CHANGED_CHANNEL, reloadKeyring);
  // A seal may have been announced while this instance could not hear it.
  const checkSealGeneration = async () => {
    try {
      if (!(await sealGeneration.missedSeal())) return;
      Logger.warn({ msg: 'a seal was approved that this instance was not notified of: sealing' }, 'Seal');
      await sealState.seal();
    } catch (error) {
      Logger.warn({ msg: 'seal generation not read; retrying at the next resync', err: (error as Error).message }, 'Seal');
    }
  };
  // What must reach every instance even when its notifications are lost: re-read after every reconnection of the
  // listener and, as a backstop, periodically. Each logs and keeps the previous state when the read fails. The
  // master-key versions are among them: a version retired elsewhere leaves this instance's memory within a pass
  // (new material is refused under it by the database anyway), and a new one is wrapped under from then on.
  const resyncAccess = async () => {
    await Promise.all([checkSealGeneration(), grants.reload(), revocations.reload(), reloadMasterKeyVersions()]);
  };
  const backstop = new PeriodicResync(options.resyncIntervalMs ?? RESYNC_INTERVAL_MS, resyncAccess);
  listener.onResync(() => {
    // The pass re-reads the master-key versions too; a version added meanwhile may leave rows to rewrap.
    void backstop.runOnce().then(() => {
      if (!sealState.sealed) rewrap.trigger();
    });
    cache.clear();
  });
  await grants.reload();
  await revocations.reload();
  // Certificates Keyhold issues must open the service listener, besides those of the configured CA.
  // Sealed on a first start, the CA cannot be created yet (its key is sealed under the master key): the
  // listener starts with the configured CA alone and adds Keyhold's CA once unsealed.
  let serviceIdentityCa = sealState.sealed ? await authority.existing() : await authority.ensure();

  const metrics = new ServerMetrics({
    sealed: () => sealState.sealed,
    cachedKeys: () => cache.size,
    audit: audit.trail.enabled
      ? {
          queuedRecords: () => audit.trail.queuedRecords,
          writeFailures: () => audit.trail.writeFailures,
          checkpointSigningOk: () => audit.checkpointer.signingStatus().status === 'ok',
          retentionFailures: () => audit.pruner?.retentionFailures ?? 0,
          prunedRecords: () => audit.pruner?.pruned.records ?? 0,
          archivedBytes: () => audit.pruner?.pruned.archivedBytes ?? 0,
        }
      : undefined,
  });
  audit.trail.onBatchCommitted((records, seconds) => metrics.auditBatchCommitted(records, seconds));
  const rateLimiter = new RateLimiter(options.rateLimit ?? { perSecond: 0, burst: 0 });
  const certificateClock = options.certificateClock ?? Date.now;
  const nextRequestId = requestIdGenerator();
  let closing = false;
  const cryptoRoutes = new CryptoHttpHandler({
    crypto,
    grants,
    rateLimiter,
    sealState,
    certificateClock,
    revocations,
    nextRequestId,
    closing: () => closing,
    audit: audit.trail.enabled ? new RequestRecorder({ plane: 'service', trail: audit.trail, keys: audit.keys, now: () => clock.now() }) : null,
    metrics,
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    ServicePlaneModule.register({ keys, crypto, health, sealState, grants, revocations, rateLimiter, certificateClock, metrics }),
    httpsAdapter(
      {
        cert: options.tls.cert,
        key: options.tls.key,
        clientCa: serviceIdentityCa ? [options.tls.clientCa, serviceIdentityCa] : [options.tls.clientCa],
      },
      nextRequestId,
      (request, response) => cryptoRoutes.handle(request, response),
    ),
    { logger: options.logger, bufferLogs: false },
  );
  configureFastify(app);
  registerRequestMetrics(app.getHttpAdapter().getInstance(), 'service', metrics);
  if (audit.trail.enabled) registerAuditHooks(app.getHttpAdapter().getInstance(), { plane: 'service', trail: audit.trail, keys: audit.keys, now: () => clock.now() });
  sealState.onChange(async (sealed) => {
    if (sealed || serviceIdentityCa) return;
    serviceIdentityCa = await authority.ensure();
    (app.getHttpServer() as unknown as import('node:tls').Server).setSecureContext({
      cert: options.tls.cert,
      key: options.tls.key,
      ca: [options.tls.clientCa, serviceIdentityCa],
      minVersion: 'TLSv1.2',
    });
  });

  await listener.start();
  backstop.start();
  usage.start();
  if (options.startScheduler !== false) {
    scheduler.start();
    rewrap.start();
    audit.pruner?.start();
  }
  await app.listen({ host: options.host, port: options.port });
  const port = listeningPort(app, options.port);
  const identities = { grants: grantsRepository, grantPolicy: grants, authority, revocations };
  const seal = { state: sealState, unsealer, generation: sealGeneration };
  const masterKeyParts = { ring: masterKey, service: masterKeys, rewrap };
  const admin = options.admin ? await startAdminListener(options, options.admin, keys, identities, clock, seal, audit, masterKeys, metrics) : null;
  audit.checkpointer.start();

  return {
    app,
    url: `https://localhost:${port}`,
    port,
    keys,
    scheduler,
    cache,
    usage,
    identities,
    admin,
    seal,
    masterKey: masterKeyParts,
    audit,
    notifications: { listener, resync: backstop },
    async close() {
      unsealer?.clear();
      // Flush first: with the embedded Postgres, its own exit hook may stop the database moments later.
      await usage.flush();
      await scheduler.stop();
      await rewrap.stop();
      await audit.pruner?.stop();
      await backstop.stop();
      await admin?.app.close();
      closing = true;
      await app.close();
      await audit.trail.close();
      await audit.checkpointer.stop();
      audit.keys.forget();
      await usage.stop();
      await listener.stop();
    },
  };
}

/** The audit trail, its keys (created at the first unsealed start, forgotten when sealed) and its checkpoints. */
async function startAudit(options: KeyholdServerOptions, masterKey: MasterKey, sealState: SealState, clock: Clock): Promise<KeyholdAudit> {
  const now = () => clock.now();
  const trail = new AuditTrail({
    enabled: options.audit?.enabled ?? true,
    groupCommit: options.audit?.groupCommit ?? DEFAULT_GROUP_COMMIT,
    databaseUrl: options.databaseUrl,
  });
  const keys = new AuditKeys(options.dataSource, masterKey, bootstrapAuditScope(trail, clock));
  const checkpointer = new AuditCheckpointer(options.dataSource, keys, options.audit?.checkpoints ?? DEFAULT_CHECKPOINT_POLICY, now);
  trail.onAppended((head, committed) => checkpointer.noticeHead(head, committed));
  if (!sealState.sealed) await keys.ensure(now());
  const publicKeyPem = await keys.publicKeyPem();
  if (publicKeyPem) {
    // The fingerprint, so operators can check the key they verify checkpoints with (kmsctl audit public-key).
    options.logger.log({ msg: 'audit trail', enabled: trail.enabled, checkpointKeyFingerprint: publicKeyFingerprint(publicKeyPem) }, 'AuditTrail');
  }
  sealState.onChange(async (sealed) => {
    if (sealed) keys.forget();
    else await keys.ensure(now());
  });
  const pruner = trail.enabled
    ? new AuditPruner(
        options.dataSource,
        keys,
        options.audit?.minRetentionDays ?? DEFAULT_AUDIT_MIN_RETENTION_DAYS,
        now,
        {
          audit: new SystemAuditScope(trail, 'system:retention', now),
          intervalMs: options.audit?.retentionIntervalMs ?? DEFAULT_RETENTION_INTERVAL_MS,
        },
        checkArchiveFolder(options.audit?.archiveDir),
      )
    : null;
  return { trail, keys, checkpointer, queries: new AuditQueries(options.dataSource.manager), pruner };
}

/** Records what a new database creates at its first unsealed start (audit keys, service-identity CA). */
function bootstrapAuditScope(trail: AuditTrail, clock: Clock): SystemAuditScope {
  return new SystemAuditScope(trail, 'system:bootstrap', () => clock.now());
}

function sealStateOf(masterKey: MasterKey | undefined): SealState {
  if (!masterKey) throw new Error('startKeyholdServer needs masterKey or seal');
  return new SealState(masterKey.protection, masterKey);
}

function listeningPort(app: NestFastifyApplication, fallback: number): number {
  const address = app.getHttpServer().address();
  return typeof address === 'object' && address ? address.port : fallback;
}

async function startAdminListener(
  options: KeyholdServerOptions,
  listen: AdminListenerOptions,
  keys: KeysService,
  identities: KeyholdServer['identities'],
  clock: Clock,
  seal: KeyholdServer['seal'],
  audit: KeyholdAudit,
  masterKeys: MasterKeyService,
  metrics: ServerMetrics,
): Promise<NonNullable<KeyholdServer['admin']>> {
  const now = () => clock.now();
  const repository = new AdminRepository(options.dataSource);
  const challenges = new PostgresChallengeStore(options.dataSource, now);
  const webauthn = new WebAuthnCeremonies({ rpId: listen.rpId, rpName: 'Keyhold', origins: listen.origins });
  const signInLimit = options.signInRateLimit ?? { perSecond: 0.5, burst: 30 };
  const auth = new AdminAuthService(repository, challenges, webauthn, now, new RateLimiter(signInLimit));
  const sessions = new AdminSessions(repository, now);
  const signInLimiter = new RateLimiter(signInLimit);
  const adminApp = await NestFactory.create<NestFastifyApplication>(
    AdminPlaneModule.register({
      repository,
      auth,
      sessions,
      keys,
      signInLimiter,
      publicOrigin: listen.publicOrigin,
      grants: identities.grants,
      grantPolicy: identities.grantPolicy,
      authority: identities.authority,
      approvals: new ApprovalsService(options.dataSource, repository, auth, webauthn, keys, now, seal.state, masterKeys, seal.generation, audit.pruner),
      seal,
      masterKeys,
      audit: { queries: audit.queries, keys: audit.keys, checkpointer: audit.checkpointer, exporter: new AuditExporter(audit.queries, audit.keys, now), pruner: audit.pruner },
    }),
    httpsAdapter({ cert: listen.cert, key: listen.key, clientCa: listen.requireClientCa }, requestIdGenerator()),
    { logger: options.logger, bufferLogs: false },
  );
  configureFastify(adminApp);
  registerRequestMetrics(adminApp.getHttpAdapter().getInstance(), 'admin', metrics);
  if (audit.trail.enabled) registerAuditHooks(adminApp.getHttpAdapter().getInstance(), { plane: 'admin', trail: audit.trail, keys: audit.keys, now });
  adminApp.getHttpAdapter().getInstance().addHook('onSend', (_request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (error: null, payload: unknown) => void) => {
    // The admin plane is only ever read by its own console: no framing, no sniffing, no caching of answers.
    void reply.header('x-frame-options', 'DENY');
    void reply.header('x-content-type-options', 'nosniff');
    void reply.header('cache-control', 'no-store');
    void reply.header('strict-transport-security', 'max-age=31536000');
    void reply.header('referrer-policy', 'no-referrer');
    done(null, payload);
  });
  registerAdminConsole(adminApp.getHttpAdapter().getInstance(), listen.consoleDir);
  await adminApp.listen({ host: listen.host, port: listen.port });
  const port = listeningPort(adminApp, listen.port);
  const setupToken = await auth.ensureSetupToken();
  return {
    app: adminApp,
    url: `https://localhost:${port}`,
    port,
    auth,
    setupLink: setupToken ? `${listen.publicOrigin}/setup#token=${setupToken}` : null,
  };
}

/**
 * One listener's HTTPS and Fastify settings: TLS 1.2 at least, the API's body limit, cheap request ids, no
 * Fastify logging (Nest logs through pino). With `clientCa`, a client certificate chaining to it is required.
 * `ahead` sees every request first and answers those it serves (the service plane's crypto routes).
 */
function httpsAdapter(
  tls: { cert: string | Buffer; key: string | Buffer; clientCa?: string | Buffer | Array<string | Buffer> },
  nextRequestId: () => string,
  ahead?: (request: IncomingMessage, response: ServerResponse) => boolean,
): FastifyAdapter {
  const https = {
    cert: tls.cert,
    key: tls.key,
    ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
    minVersion: 'TLSv1.2' as const,
  };
  const server = ahead
    ? {
        serverFactory: (fastifyHandler: (request: IncomingMessage, response: ServerResponse) => void) => {
          const created = createHttpsServer(https, (request, response) => {
            if (!ahead(request, response)) fastifyHandler(request, response);
          });
          created.keepAliveTimeout = FASTIFY_KEEP_ALIVE_TIMEOUT_MS;
          created.requestTimeout = REQUEST_TIMEOUT_MS;
          return created;
        },
      }
    : { https };
  // Typed as Fastify's plain-HTTP options: its typings do not follow a serverFactory that makes an HTTPS server.
  return new FastifyAdapter<RawServerDefault>({
    ...server,
    bodyLimit: MAX_REQUEST_BODY_BYTES,
    requestTimeout: REQUEST_TIMEOUT_MS,
    routerOptions: { maxParamLength: 256 },
    genReqId: nextRequestId,
    logger: false,
    return503OnClosing: true,
  } as FastifyServerOptions<RawServerDefault>);
}

/** Fastify's own default, kept when Keyhold creates the server itself. */
const FASTIFY_KEEP_ALIVE_TIMEOUT_MS = 72_000;
/**
 * A whole request (at most 64 KiB on the service plane, a few KiB on the admin plane) must arrive within this:
 * nobody, signed in or not, holds connections half-sent for long. (Fastify's own default is no limit at all; the
 * service plane's checks run again once the body is in, whatever the wait.)
 */
export const REQUEST_TIMEOUT_MS = 30_000;

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
