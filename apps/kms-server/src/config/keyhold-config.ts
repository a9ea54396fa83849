import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { SHAMIR_SEAL_FILE_NAME } from '@keyhold/contracts';
import { describeIssues } from '../common/zod-body.pipe';
import { DEFAULT_AUDIT_MIN_RETENTION_DAYS } from '../audit/audit-pruner';

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
  KEYHOLD_MASTER_KEY_PASSPHRASE_FD: z.coerce.number().int().min(0).max(65_535).optional(),
  KEYHOLD_SEAL: z.string().optional(),
  KEYHOLD_SHAMIR_FILE: z.string().optional(),
  KEYHOLD_SHAMIR_SHARE_TIMEOUT_SECONDS: z.coerce.number().int().min(10).max(86_400).default(600),
  KEYHOLD_PKCS11_LIBRARY: z.string().default('/usr/lib/softhsm/libsofthsm2.so'),
  KEYHOLD_PKCS11_SLOT: z.coerce.number().int().min(0).optional(),
  KEYHOLD_PKCS11_TOKEN_LABEL: z.string().min(1).max(32).optional(),
  KEYHOLD_PKCS11_PIN: z.string().optional(),
  KEYHOLD_PKCS11_PIN_FILE: z.string().optional(),
  KEYHOLD_PKCS11_KEY_LABEL: z.string().min(1).default('keyhold-master-wrapping-key'),
  KEYHOLD_PKCS11_WRAPPED_KEY_FILE: z.string().optional(),
  KEYHOLD_GRANTS_FILE: z.string().optional(),
  KEYHOLD_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
  KEYHOLD_SCHEDULER_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(86_400).default(30),
  KEYHOLD_RESYNC_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(3600).default(60),
  KEYHOLD_KEY_CACHE_TTL_SECONDS: z.coerce.number().int().min(1).max(86_400).default(300),
  KEYHOLD_KEY_CACHE_MAX_KEYS: z.coerce.number().int().min(1).max(10_000_000).default(10_000),
  KEYHOLD_RATE_LIMIT_PER_SECOND: z.coerce.number().min(0).max(10_000_000).default(0),
  KEYHOLD_RATE_LIMIT_BURST: z.coerce.number().int().min(1).max(10_000_000).optional(),
  KEYHOLD_EMBEDDED_POSTGRES_PORT: z.coerce.number().int().min(1).max(65535).default(55432),
  KEYHOLD_MASTER_KEY_REWRAP_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(100),
  KEYHOLD_MASTER_KEY_REWRAP_PACE_MS: z.coerce.number().int().min(0).max(60_000).default(20),
  KEYHOLD_MASTER_KEY_REWRAP_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(86_400).default(60),
  KEYHOLD_AUDIT: z.enum(['on', 'off']).default('on'),
  KEYHOLD_AUDIT_COMMIT_DELAY_MS: z.coerce.number().int().min(0).max(1000).default(0),
  KEYHOLD_AUDIT_COMMIT_MAX_RECORDS: z.coerce.number().int().min(1).max(10_000).default(1000),
  KEYHOLD_AUDIT_CHECKPOINT_SECONDS: z.coerce.number().int().min(0).max(86_400).default(60),
  KEYHOLD_AUDIT_CHECKPOINT_RECORDS: z.coerce.number().int().min(0).max(100_000_000).default(10_000),
  KEYHOLD_AUDIT_MIN_RETENTION_DAYS: z.coerce.number().int().min(0).max(36_500).default(DEFAULT_AUDIT_MIN_RETENTION_DAYS),
  KEYHOLD_AUDIT_ARCHIVE_DIR: z.string().min(1).optional(),
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
  /**
   * Which sealer protects the master key: `file` (the development key file, or a passphrase-sealed one),
   * `shamir` (start sealed; admins submit shares) or `pkcs11` (wrapped by an AES key inside a token).
   */
  seal: SealConfig;
  grantsFile: string;
  logLevel: string;
  /** The background rewrap after a master-key rotation: rows per transaction, pause between batches, check interval. */
  masterKeyRewrap: { batchSize: number; paceMs: number; intervalMs: number };
  schedulerIntervalMs: number;
  /** How often grants, revocations, the seal generation and the master-key versions are re-read even without a notification. */
  resyncIntervalMs: number;
  keyCache: { ttlMs: number; maxKeys: number };
  rateLimit: { perSecond: number; burst: number };
  /** The audit trail; `enabled: false` only in development (the benchmark's without-audit figure). */
  audit: {
    enabled: boolean;
    groupCommit: { maxDelayMs: number; maxBatch: number };
    checkpoints: { intervalMs: number; everyRecords: number };
    /** Records younger than this are never pruned (docs/audit.md, retention). */
    minRetentionDays: number;
    /** Where every prune first archives the records it removes (absent: operators archive them). */
    archiveDir?: string;
  };
}

export const SEAL_KINDS = ['file', 'shamir', 'pkcs11'] as const;
export type SealKind = (typeof SEAL_KINDS)[number];

export interface Pkcs11Config {
  library: string;
  slot: number | null;
  tokenLabel: string | null;
  pin: string;
  keyLabel: string;
  /** The master key wrapped by the token's key (written by keyhold-init --seal pkcs11). */
  wrappedKeyFile: string;
}

export interface SealConfig {
  kind: SealKind;
  shamirFile: string;
  /** How long submitted shares are kept, counted from the first, before they are discarded. */
  shareTimeoutMs: number;
  pkcs11: Pkcs11Config | null;
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
    shamirFile: join(home, SHAMIR_SEAL_FILE_NAME),
    pkcs11WrappedKey: join(home, 'master-key.pkcs11.json'),
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
  const sealKind = (e.KEYHOLD_SEAL ?? 'file') as SealKind;
  if (!SEAL_KINDS.includes(sealKind)) {
    throw new ConfigError(`KEYHOLD_SEAL must be one of ${SEAL_KINDS.join(', ')} (got ${JSON.stringify(e.KEYHOLD_SEAL)})`);
  }
  const passphrase =
    sealKind === 'file'
      ? readSecret('KEYHOLD_MASTER_KEY_PASSPHRASE', e.KEYHOLD_MASTER_KEY_PASSPHRASE, e.KEYHOLD_MASTER_KEY_PASSPHRASE_FILE, e.KEYHOLD_MASTER_KEY_PASSPHRASE_FD)
      : null;

  if (production) {
    const missing = (
      [
        ['DATABASE_URL', e.DATABASE_URL],
        ['KEYHOLD_TLS_CERT_FILE', e.KEYHOLD_TLS_CERT_FILE],
        ['KEYHOLD_TLS_KEY_FILE', e.KEYHOLD_TLS_KEY_FILE],
        ['KEYHOLD_CLIENT_CA_FILE', e.KEYHOLD_CLIENT_CA_FILE],
        ['KEYHOLD_MASTER_KEY_FILE', sealKind === 'file' ? e.KEYHOLD_MASTER_KEY_FILE : 'unused'],
        ['KEYHOLD_SHAMIR_FILE', sealKind === 'shamir' ? e.KEYHOLD_SHAMIR_FILE : 'unused'],
        ['KEYHOLD_PKCS11_WRAPPED_KEY_FILE', sealKind === 'pkcs11' ? e.KEYHOLD_PKCS11_WRAPPED_KEY_FILE : 'unused'],
        ['KEYHOLD_GRANTS_FILE', e.KEYHOLD_GRANTS_FILE],
      ] as const
    )
      .filter(([, value]) => !value)
      .map(([name]) => name);
    if (missing.length > 0) {
      throw new ConfigError(`NODE_ENV=production needs ${missing.join(', ')}; see README "Running in production"`);
    }
    if (sealKind === 'file' && !passphrase) {
      throw new ConfigError(
        'NODE_ENV=production needs KEYHOLD_MASTER_KEY_PASSPHRASE, KEYHOLD_MASTER_KEY_PASSPHRASE_FILE or KEYHOLD_MASTER_KEY_PASSPHRASE_FD to unseal the master key (or KEYHOLD_SEAL=shamir|pkcs11)',
      );
    }
  }

  if (production && e.KEYHOLD_AUDIT === 'off') {
    throw new ConfigError('KEYHOLD_AUDIT=off is for development measurements only; production always keeps the audit trail');
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
    seal: {
      kind: sealKind,
      shamirFile: file(e.KEYHOLD_SHAMIR_FILE, dev.shamirFile),
      shareTimeoutMs: e.KEYHOLD_SHAMIR_SHARE_TIMEOUT_SECONDS * 1000,
      pkcs11: sealKind === 'pkcs11' ? pkcs11Config(e, file(e.KEYHOLD_PKCS11_WRAPPED_KEY_FILE, dev.pkcs11WrappedKey)) : null,
    },
    grantsFile: file(e.KEYHOLD_GRANTS_FILE, dev.grants),
    logLevel: e.KEYHOLD_LOG_LEVEL,
    schedulerIntervalMs: e.KEYHOLD_SCHEDULER_INTERVAL_SECONDS * 1000,
    resyncIntervalMs: e.KEYHOLD_RESYNC_INTERVAL_SECONDS * 1000,
    masterKeyRewrap: {
      batchSize: e.KEYHOLD_MASTER_KEY_REWRAP_BATCH_SIZE,
      paceMs: e.KEYHOLD_MASTER_KEY_REWRAP_PACE_MS,
      intervalMs: e.KEYHOLD_MASTER_KEY_REWRAP_INTERVAL_SECONDS * 1000,
    },
    keyCache: { ttlMs: e.KEYHOLD_KEY_CACHE_TTL_SECONDS * 1000, maxKeys: e.KEYHOLD_KEY_CACHE_MAX_KEYS },
    rateLimit: {
      perSecond: e.KEYHOLD_RATE_LIMIT_PER_SECOND,
      burst: e.KEYHOLD_RATE_LIMIT_BURST ?? Math.max(1, Math.ceil(e.KEYHOLD_RATE_LIMIT_PER_SECOND * 2)),
    },
    audit: {
      enabled: e.KEYHOLD_AUDIT === 'on',
      groupCommit: { maxDelayMs: e.KEYHOLD_AUDIT_COMMIT_DELAY_MS, maxBatch: e.KEYHOLD_AUDIT_COMMIT_MAX_RECORDS },
      checkpoints: { intervalMs: e.KEYHOLD_AUDIT_CHECKPOINT_SECONDS * 1000, everyRecords: e.KEYHOLD_AUDIT_CHECKPOINT_RECORDS },
      minRetentionDays: e.KEYHOLD_AUDIT_MIN_RETENTION_DAYS,
      archiveDir: e.KEYHOLD_AUDIT_ARCHIVE_DIR,
    },
  };
}

function absolute(path: string): string {
  return isAbsolute(path) ? path : resolve(path);
}

function pkcs11Config(e: z.infer<typeof environmentSchema>, wrappedKeyFile: string): Pkcs11Config {
  const pin = readSecret('KEYHOLD_PKCS11_PIN', e.KEYHOLD_PKCS11_PIN, e.KEYHOLD_PKCS11_PIN_FILE, undefined);
  if (!pin) throw new ConfigError('KEYHOLD_SEAL=pkcs11 needs KEYHOLD_PKCS11_PIN or KEYHOLD_PKCS11_PIN_FILE (the user PIN of the token)');
  if (e.KEYHOLD_PKCS11_SLOT === undefined && !e.KEYHOLD_PKCS11_TOKEN_LABEL) {
    throw new ConfigError('KEYHOLD_SEAL=pkcs11 needs KEYHOLD_PKCS11_TOKEN_LABEL or KEYHOLD_PKCS11_SLOT to find the token');
  }
  return {
    library: absolute(e.KEYHOLD_PKCS11_LIBRARY),
    slot: e.KEYHOLD_PKCS11_SLOT ?? null,
    tokenLabel: e.KEYHOLD_PKCS11_TOKEN_LABEL ?? null,
    pin,
    keyLabel: e.KEYHOLD_PKCS11_KEY_LABEL,
    wrappedKeyFile,
  };
}

/** A secret from the variable itself, a file holding it, or an inherited file descriptor (read once, to its end). */
function readSecret(name: string, value: string | undefined, file: string | undefined, fd: number | undefined): string | null {
  if (value) return value;
  try {
    if (file) return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    if (fd !== undefined) return readFileSync(fd, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new ConfigError(`cannot read ${name}${file ? '_FILE' : '_FD'}: ${(error as Error).message}`);
  }
  return null;
}
