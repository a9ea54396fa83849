import 'reflect-metadata';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import type { Grant } from '@keyhold/contracts';
import type { CertificateClock, RateLimit } from '@keyhold/auth';
import { KeyholdClient } from '@keyhold/client-sdk';
import { type CertificateAndKey, createCertificateAuthority, issueCertificate, randomBytes } from '@keyhold/crypto-core';
import { ManualClock } from '@keyhold/key-lifecycle';
import { openDatabase } from '../../src/database/data-source';
import { type KeyholdServer, type KeyholdServerOptions, startKeyholdServer } from '../../src/keyhold-server';
import { KeyholdLogger, createLogger } from '../../src/logging/logger';
import { InMemoryMasterKey } from '../../src/seal/master-key';
import { type TestDatabase, createTestDatabase } from './test-database';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port'))));
    });
  });
}

export const OPERATOR = 'spiffe://test.keyhold/operator';

export interface Credentials {
  cert: string;
  key: string;
}

export interface TestKeyhold {
  url: string;
  ca: string;
  operator: Credentials;
  clock: ManualClock;
  server: KeyholdServer;
  dataSource: DataSource;
  database: TestDatabase;
  masterKey: InMemoryMasterKey;
  /** The admin listener's origin (https://localhost:PORT), when started with `admin: true`. */
  adminOrigin: string;
  /** supertest against the admin listener, with an optional session cookie and CSRF token. */
  adminHttp(session?: { cookie?: string; csrfToken?: string }): {
    get(path: string): request.Test;
    post(path: string): request.Test;
    patch(path: string): request.Test;
    delete(path: string): request.Test;
  };
  /** Every log line the server wrote, for the no-secrets-in-logs checks. */
  logs: string[];
  /** A client certificate from the test CA; `identity` becomes its URI SAN unless told otherwise. */
  issueClient(options: { uri?: string; dns?: string; commonName?: string; notBefore?: Date; notAfter?: Date }): Promise<Credentials>;
  client(credentials?: Credentials): KeyholdClient;
  /** supertest against the real HTTPS listener, presenting `credentials` (the operator's by default). */
  http(credentials?: Credentials | null): {
    get(path: string): request.Test;
    post(path: string): request.Test;
    patch(path: string): request.Test;
    put(path: string): request.Test;
    delete(path: string): request.Test;
  };
  stop(): Promise<void>;
}

/**
 * A whole Keyhold service plane for one test file: its own database on the test Postgres, real migrations, a
 * fresh CA, real TLS on a free port, a manual clock and an in-memory log.
 */
export interface TestKeyholdOptions {
  grants?: Grant[];
  clock?: ManualClock;
  rateLimit?: RateLimit;
  certificateClock?: CertificateClock;
  /** Use this database (already created) instead of a fresh one on the test server; it is not dropped. */
  databaseUrl?: string;
  /** Instances sharing a database share their root master key. */
  masterKey?: InMemoryMasterKey;
  /** Also start the admin listener (WebAuthn relying party `localhost`, origin https://localhost:<port>). */
  admin?: boolean;
  /** Make the admin listener require a client certificate from the test CA too. */
  adminRequiresClientCertificate?: boolean;
  signInRateLimit?: RateLimit;
  /** A seal state (e.g. sealed, with a Shamir verifier) instead of the unsealed in-memory master key. */
  seal?: KeyholdServerOptions['seal'];
  /** Batch size and pace of the master-key rewrap (run by hand: server.masterKey.rewrap.runOnce()). */
  masterKeyRewrap?: KeyholdServerOptions['masterKeyRewrap'];
  /** Audit trail settings (group commit, checkpoint policy; default: timer-less checkpoints). */
  audit?: KeyholdServerOptions['audit'];
  /** The periodic re-read of grants, revocations and the seal generation (default: the server's). */
  resyncIntervalMs?: number;
  /** The notification connection's heartbeat (default: the server's). */
  listenerHeartbeat?: KeyholdServerOptions['listenerHeartbeat'];
}

export async function startTestKeyhold(options: TestKeyholdOptions = {}): Promise<TestKeyhold> {
  const ca = await createCertificateAuthority({ commonName: 'Keyhold test CA' });
  const serverCertificate = await issueCertificate({
    issuer: ca,
    commonName: 'localhost',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    usage: 'server',
  });
  const issueClient: TestKeyhold['issueClient'] = async (client) => {
    const issued: CertificateAndKey = await issueCertificate({
      issuer: ca,
      commonName: client.commonName ?? 'test-client',
      uris: client.uri ? [client.uri] : undefined,
      dnsNames: client.dns ? [client.dns] : undefined,
      usage: 'client',
      notBefore: client.notBefore,
      notAfter: client.notAfter,
    });
    return { cert: issued.certificatePem, key: issued.privateKeyPem };
  };
  const operator = await issueClient({ uri: OPERATOR });
  const database: TestDatabase = options.databaseUrl
    ? { url: options.databaseUrl, name: 'external', drop: async () => undefined }
    : await createTestDatabase();
  const dataSource = await openDatabase(database.url);
  const clock = options.clock ?? new ManualClock(new Date('2026-01-01T00:00:00Z'));
  const masterKey = options.masterKey ?? new InMemoryMasterKey(randomBytes(32), 1, 'development-file');
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const logger = new KeyholdLogger(createLogger({ level: 'trace', destination }));
  const grants = options.grants ?? [{ identity: OPERATOR, keys: '*', operations: ['*'] }];
  const adminPort = options.admin ? await freePort() : 0;
  const adminOrigin = `https://localhost:${adminPort}`;
  let server: KeyholdServer;
  try {
    server = await startKeyholdServer({
      databaseUrl: database.url,
      dataSource,
      masterKey: options.seal ? undefined : masterKey,
      seal: options.seal,
      fileGrants: grants,
      logger,
      tls: { cert: serverCertificate.certificatePem, key: serverCertificate.privateKeyPem, clientCa: ca.certificatePem },
      host: '127.0.0.1',
      port: 0,
      clock,
      startScheduler: false,
      rateLimit: options.rateLimit,
      signInRateLimit: options.signInRateLimit ?? { perSecond: 0, burst: 0 },
      admin: options.admin
        ? {
            host: '127.0.0.1',
            port: adminPort,
            cert: serverCertificate.certificatePem,
            key: serverCertificate.privateKeyPem,
            requireClientCa: options.adminRequiresClientCertificate ? ca.certificatePem : undefined,
            rpId: 'localhost',
            origins: [adminOrigin],
            publicOrigin: adminOrigin,
          }
        : undefined,
      certificateClock: options.certificateClock,
      usageFlushIntervalMs: 60_000,
      masterKeyRewrap: options.masterKeyRewrap,
      audit: options.audit ?? { checkpoints: { intervalMs: 0, everyRecords: 0 } },
      resyncIntervalMs: options.resyncIntervalMs,
      listenerHeartbeat: options.listenerHeartbeat,
    });
  } catch (error) {
    // A start that fails (tests of fail-closed starts) leaves no connection open and no database behind.
    await dataSource.destroy();
    await database.drop();
    throw error;
  }
  const clients: KeyholdClient[] = [];
  const http = (credentials: Credentials | null = operator) => {
    const withTls = (test: request.Test) => {
      test.ca(ca.certificatePem);
      if (credentials) test.cert(credentials.cert).key(credentials.key);
      return test;
    };
    const agent = request(server.url);
    return {
      get: (path: string) => withTls(agent.get(path)),
      post: (path: string) => withTls(agent.post(path)),
      patch: (path: string) => withTls(agent.patch(path)),
      put: (path: string) => withTls(agent.put(path)),
      delete: (path: string) => withTls(agent.delete(path)),
    };
  };
  return {
    url: server.url,
    ca: ca.certificatePem,
    operator,
    clock,
    server,
    dataSource,
    database,
    masterKey,
    logs,
    issueClient,
    client(credentials = operator) {
      const client = new KeyholdClient({ baseUrl: server.url, ca: ca.certificatePem, ...credentials });
      clients.push(client);
      return client;
    },
    http,
    adminOrigin,
    adminHttp(session = {}) {
      if (!server.admin) throw new Error('start the test server with admin: true');
      const agent = request(server.admin.url);
      const prepare = (test: request.Test) => {
        test.ca(ca.certificatePem);
        if (session.cookie) test.set('cookie', session.cookie);
        if (session.csrfToken) test.set('x-csrf-token', session.csrfToken);
        return test;
      };
      return {
        get: (path: string) => prepare(agent.get(path)),
        post: (path: string) => prepare(agent.post(path)),
        patch: (path: string) => prepare(agent.patch(path)),
        delete: (path: string) => prepare(agent.delete(path)),
      };
    },
    async stop() {
      await Promise.all(clients.map((client) => client.close()));
      await server.close();
      await dataSource.destroy();
      await database.drop();
    },
  };
}
