import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { describeIssues } from '../common/zod-body.pipe';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Every setting Keyhold reads from the environment. Secret ones are never logged or echoed back. */
const environmentSchema = z.object({
  NODE_ENV: z.string().optional(),
  KEYHOLD_HOME: z.string().default('.keyhold'),
  DATABASE_URL: z.string().url().optional(),
  KEYHOLD_SERVICE_HOST: z.string().optional(),
  KEYHOLD_SERVICE_PORT: z.coerce.number().int().min(0).max(65535).default(8443),
  KEYHOLD_ADMIN_HOST: z.string().optional(),
  KEYHOLD_ADMIN_PORT: z.coerce.number().int().min(0).max(65535).default(8444),
  KEYHOLD_ADMIN_PUBLIC_ORIGIN: z.string().url().optional(),
  KEYHOLD_ADMIN_RP_ID: z.string().min(1).optional(),
  KEYHOLD_ADMIN_ORIGINS: z.string().optional(),
  KEYHOLD_ADMIN_TLS_CERT_FILE: z.string().optional(),
  KEYHOLD_ADMIN_TLS_KEY_FILE: z.string().optional(),
  KEYHOLD_ADMIN_CLIENT_CA_FILE: z.string().optional(),
  KEYHOLD_TLS_CERT_FILE: z.string().optional(),
  KEYHOLD_TLS_KEY_FILE: z.string().optional(),
  KEYHOLD_CLIENT_CA_FILE: z.string().optional(),
  KEYHOLD_MASTER_KEY_FILE: z.string().optional(),
  KEYHOLD_MASTER_KEY_PASSPHRASE: z.string().optional(),
  KEYHOLD_MASTER_KEY_PASSPHRASE_FILE: z.string().optional(),
  KEYHOLD_GRANTS_FILE: z.string().optional(),
  KEYHOLD_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
  KEYHOLD_SCHEDULER_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(86_400).default(30),
  KEYHOLD_KEY_CACHE_TTL_SECONDS: z.coerce.number().int().min(1).max(86_400).default(300),
  KEYHOLD_KEY_CACHE_MAX_KEYS: z.coerce.number().int().min(1).max(10_000_000).default(10_000),
  KEYHOLD_RATE_LIMIT_PER_SECOND: z.coerce.number().min(0).max(10_000_000).default(0),
  KEYHOLD_RATE_LIMIT_BURST: z.coerce.number().int().min(1).max(10_000_000).optional(),
  KEYHOLD_EMBEDDED_POSTGRES_PORT: z.coerce.number().int().min(1).max(65535).default(55432),
});

export interface KeyholdConfig {
  production: boolean;
  home: string;
  /** null: start the embedded PostgreSQL under `home`. */
  databaseUrl: string | null;
  embeddedPostgresPort: number;
  service: { host: string; port: number; certFile: string; keyFile: string; clientCaFile: string };
  admin: {
    host: string;
    port: number;
    certFile: string;
    keyFile: string;
    /** Set: the admin listener also requires a client certificate from this bundle. */
    clientCaFile: string | null;
    publicOrigin: string;
    rpId: string;
    origins: string[];
  };
  masterKey: { file: string; passphrase: string | null };
  grantsFile: string;
  logLevel: string;
  schedulerIntervalMs: number;
  keyCache: { ttlMs: number; maxKeys: number };
  rateLimit: { perSecond: number; burst: number };
}

/** Files the development start-up writes under the Keyhold home folder. */
export function developmentPaths(home: string) {
  return {
    caCert: join(home, 'ca.crt'),
    caKey: join(home, 'ca.key'),
    serverCert: join(home, 'server.crt'),
    serverKey: join(home, 'server.key'),
    operatorCert: join(home, 'operator.crt'),
    operatorKey: join(home, 'operator.key'),
    masterKey: join(home, 'master-key.dev.json'),
    grants: join(home, 'grants.json'),
  };
}

/**
 * Reads the configuration. Development fills every gap with files under KEYHOLD_HOME; production
 * (NODE_ENV=production) demands each one explicitly and refuses insecure combinations.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): KeyholdConfig {
  const parsed = environmentSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError(`invalid environment: ${describeIssues(parsed.error)}`);
  const e = parsed.data;
  const production = e.NODE_ENV === 'production';
  const home = resolve(e.KEYHOLD_HOME);
  const dev = developmentPaths(home);
  const passphrase = readPassphrase(e.KEYHOLD_MASTER_KEY_PASSPHRASE, e.KEYHOLD_MASTER_KEY_PASSPHRASE_FILE);

  if (production) {
    const missing = (
      [
        ['DATABASE_URL', e.DATABASE_URL],
        ['KEYHOLD_TLS_CERT_FILE', e.KEYHOLD_TLS_CERT_FILE],
        ['KEYHOLD_TLS_KEY_FILE', e.KEYHOLD_TLS_KEY_FILE],
        ['KEYHOLD_CLIENT_CA_FILE', e.KEYHOLD_CLIENT_CA_FILE],
        ['KEYHOLD_MASTER_KEY_FILE', e.KEYHOLD_MASTER_KEY_FILE],
        ['KEYHOLD_GRANTS_FILE', e.KEYHOLD_GRANTS_FILE],
      ] as const
    )
      .filter(([, value]) => !value)
      .map(([name]) => name);
    if (missing.length > 0) {
      throw new ConfigError(`NODE_ENV=production needs ${missing.join(', ')}; see README "Running in production"`);
    }
    if (!passphrase) {
      throw new ConfigError(
        'NODE_ENV=production needs KEYHOLD_MASTER_KEY_PASSPHRASE or KEYHOLD_MASTER_KEY_PASSPHRASE_FILE to unseal the master key',
      );
    }
  }

  const file = (value: string | undefined, fallback: string) => (value ? absolute(value) : fallback);
  const adminOrigin = e.KEYHOLD_ADMIN_PUBLIC_ORIGIN ?? `https://localhost:${e.KEYHOLD_ADMIN_PORT}`;
  const origins = e.KEYHOLD_ADMIN_ORIGINS ? e.KEYHOLD_ADMIN_ORIGINS.split(',').map((origin) => origin.trim()).filter(Boolean) : [adminOrigin];
  if (production && !origins.every((origin) => origin.startsWith('https://'))) {
    throw new ConfigError('KEYHOLD_ADMIN_ORIGINS must all be https:// origins in production');
  }
  const certFile = file(e.KEYHOLD_TLS_CERT_FILE, dev.serverCert);
  const keyFile = file(e.KEYHOLD_TLS_KEY_FILE, dev.serverKey);
  return {
    production,
    home,
    databaseUrl: e.DATABASE_URL ?? null,
    embeddedPostgresPort: e.KEYHOLD_EMBEDDED_POSTGRES_PORT,
    service: {
      host: e.KEYHOLD_SERVICE_HOST ?? (production ? '0.0.0.0' : '127.0.0.1'),
      port: e.KEYHOLD_SERVICE_PORT,
      certFile,
      keyFile,
      clientCaFile: file(e.KEYHOLD_CLIENT_CA_FILE, dev.caCert),
    },
    admin: {
      host: e.KEYHOLD_ADMIN_HOST ?? (production ? '0.0.0.0' : '127.0.0.1'),
      port: e.KEYHOLD_ADMIN_PORT,
      certFile: file(e.KEYHOLD_ADMIN_TLS_CERT_FILE, certFile),
      keyFile: file(e.KEYHOLD_ADMIN_TLS_KEY_FILE, keyFile),
      clientCaFile: e.KEYHOLD_ADMIN_CLIENT_CA_FILE ? absolute(e.KEYHOLD_ADMIN_CLIENT_CA_FILE) : null,
      publicOrigin: adminOrigin,
      rpId: e.KEYHOLD_ADMIN_RP_ID ?? new URL(adminOrigin).hostname,
      origins,
    },
    masterKey: { file: file(e.KEYHOLD_MASTER_KEY_FILE, dev.masterKey), passphrase },
    grantsFile: file(e.KEYHOLD_GRANTS_FILE, dev.grants),
    logLevel: e.KEYHOLD_LOG_LEVEL,
    schedulerIntervalMs: e.KEYHOLD_SCHEDULER_INTERVAL_SECONDS * 1000,
    keyCache: { ttlMs: e.KEYHOLD_KEY_CACHE_TTL_SECONDS * 1000, maxKeys: e.KEYHOLD_KEY_CACHE_MAX_KEYS },
    rateLimit: {
      perSecond: e.KEYHOLD_RATE_LIMIT_PER_SECOND,
      burst: e.KEYHOLD_RATE_LIMIT_BURST ?? Math.max(1, Math.ceil(e.KEYHOLD_RATE_LIMIT_PER_SECOND * 2)),
    },
  };
}

function absolute(path: string): string {
  return isAbsolute(path) ? path : resolve(path);
}

function readPassphrase(value: string | undefined, file: string | undefined): string | null {
  if (value) return value;
  if (!file) return null;
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new ConfigError(`cannot read KEYHOLD_MASTER_KEY_PASSPHRASE_FILE: ${(error as Error).message}`);
  }
}
