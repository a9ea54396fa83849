import { isAbsolute } from 'node:path';
import { isLogLevel, type LogLevel } from './logger';

export interface PluginConfig {
  /** File-system path of the unix socket kube-apiserver dials. */
  socketPath: string;
  socketMode: number;
  socketGroup: number | undefined;
  keyholdUrl: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  keyName: string;
  keyIdSuffix: string;
  /** `host:port` of the HTTP /healthz, /livez, /metrics listener; undefined = off. */
  healthAddress: { host: string; port: number } | undefined;
  refreshIntervalMs: number;
  probeIntervalMs: number;
  upstreamTimeoutMs: number;
  upstreamConcurrency: number;
  upstreamConnections: number;
  drainTimeoutMs: number;
  logLevel: LogLevel;
}

export class ConfigError extends Error {}

/** Every setting: environment variable, default, meaning (rendered by --help and in docs/kubernetes.md). */
export const SETTINGS = [
  ['KEYHOLD_KMS_LISTEN', 'unix:///var/run/keyhold-kms/kms.sock', 'the socket: unix:///absolute/path (abstract @names are refused)'],
  ['KEYHOLD_KMS_SOCKET_MODE', '0600', 'file mode of the socket (0660 with KEYHOLD_KMS_SOCKET_GROUP)'],
  ['KEYHOLD_KMS_SOCKET_GROUP', '', 'numeric group id given to the socket'],
  ['KEYHOLD_URL', '(required)', 'Keyhold service plane, e.g. https://keyhold.internal:8443'],
  ['KEYHOLD_CA_FILE', '(required)', 'CA bundle that signs the Keyhold server certificate'],
  ['KEYHOLD_CERT_FILE', '(required)', "the plugin's client certificate"],
  ['KEYHOLD_KEY_FILE', '(required)', "the plugin's client private key"],
  ['KEYHOLD_KMS_KEY', '(required)', 'name of the Keyhold key (aes-256-gcm) that wraps the apiserver seeds'],
  ['KEYHOLD_KMS_KEY_ID_SUFFIX', '', 'mixed into every key_id; change it only to force new key_ids (all replicas alike)'],
  ['KEYHOLD_KMS_HEALTH_ADDR', '127.0.0.1:8787', 'HTTP /healthz, /livez, /readyz, /metrics; "off" disables'],
  ['KEYHOLD_KMS_REFRESH_INTERVAL_SECONDS', '10', 'how often key metadata (and so the key_id) is read from Keyhold'],
  ['KEYHOLD_KMS_PROBE_INTERVAL_SECONDS', '60', 'how often an encrypt+decrypt probe checks the key end to end'],
  ['KEYHOLD_KMS_UPSTREAM_TIMEOUT_MS', '2500', 'limit per Keyhold call (also bounded by each RPC deadline)'],
  ['KEYHOLD_KMS_UPSTREAM_CONCURRENCY', '64', 'Keyhold calls in flight at most; more wait (within their deadline)'],
  ['KEYHOLD_KMS_UPSTREAM_CONNECTIONS', '8', 'kept-alive mTLS connections to Keyhold'],
  ['KEYHOLD_KMS_DRAIN_TIMEOUT_MS', '5000', 'on SIGTERM, how long in-flight RPCs may finish'],
  ['KEYHOLD_KMS_LOG_LEVEL', 'info', 'debug, info, warn, error, silent'],
] as const;

type Env = Record<string, string | undefined>;

function get(env: Env, name: (typeof SETTINGS)[number][0]): string {
  const value = env[name];
  if (value !== undefined && value !== '') return value;
  const fallback = SETTINGS.find(([n]) => n === name)?.[1] ?? '';
  return fallback.startsWith('(') ? '' : fallback;
}

function required(env: Env, name: (typeof SETTINGS)[number][0]): string {
  const value = get(env, name);
  if (!value) throw new ConfigError(`${name} is required`);
  return value;
}

function number(env: Env, name: (typeof SETTINGS)[number][0], min: number, max: number, integer = false): number {
  const raw = get(env, name);
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new ConfigError(`${name} must be a number from ${min} to ${max}, not ${JSON.stringify(raw)}`);
  }
  return value;
}

/** `unix:///abs/path` or `/abs/path` -> the path; refuses abstract sockets (Node pads their names). */
export function parseListen(listen: string): string {
  let path = listen;
  if (listen.startsWith('unix://')) path = listen.slice('unix://'.length);
  else if (listen.startsWith('unix:')) path = listen.slice('unix:'.length);
  if (path.startsWith('@') || path.startsWith('/@') || path.includes('\0')) {
    throw new ConfigError(
      `${listen}: abstract unix sockets are not supported (Node pads their names, so kube-apiserver cannot connect); use a file-system path such as unix:///var/run/keyhold-kms/kms.sock`,
    );
  }
  if (!isAbsolute(path)) throw new ConfigError(`${listen}: the socket must be an absolute path, e.g. unix:///var/run/keyhold-kms/kms.sock`);
  if (Buffer.byteLength(path) > 107) throw new ConfigError(`${listen}: a unix socket path is at most 107 bytes`);
  return path;
}

export function loadConfig(env: Env = process.env): PluginConfig {
  const socketPath = parseListen(get(env, 'KEYHOLD_KMS_LISTEN'));
  const modeText = get(env, 'KEYHOLD_KMS_SOCKET_MODE');
  if (!/^0?[0-7]{3}$/.test(modeText)) throw new ConfigError(`KEYHOLD_KMS_SOCKET_MODE must be octal like 0600, not ${modeText}`);
  const socketMode = parseInt(modeText, 8);
  if (socketMode & 0o007) throw new ConfigError('KEYHOLD_KMS_SOCKET_MODE must give others no access (e.g. 0600 or 0660)');
  const groupText = get(env, 'KEYHOLD_KMS_SOCKET_GROUP');
  const socketGroup = groupText ? number(env, 'KEYHOLD_KMS_SOCKET_GROUP', 0, 2 ** 31, true) : undefined;

  const keyName = required(env, 'KEYHOLD_KMS_KEY');
  if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(keyName)) throw new ConfigError(`KEYHOLD_KMS_KEY ${JSON.stringify(keyName)} is not a Keyhold key name`);

  const healthText = get(env, 'KEYHOLD_KMS_HEALTH_ADDR');
  let healthAddress: PluginConfig['healthAddress'];
  if (healthText !== 'off') {
    const m = /^(.*):(\d+)$/.exec(healthText);
    if (!m || Number(m[2]) > 65535) throw new ConfigError(`KEYHOLD_KMS_HEALTH_ADDR must be host:port or "off", not ${healthText}`);
    healthAddress = { host: m[1].replace(/^\[(.*)\]$/, '$1') || '127.0.0.1', port: Number(m[2]) };
  }
  const logLevel = get(env, 'KEYHOLD_KMS_LOG_LEVEL');
  if (!isLogLevel(logLevel)) throw new ConfigError(`KEYHOLD_KMS_LOG_LEVEL must be debug, info, warn, error or silent`);

  return {
    socketPath,
    socketMode,
    socketGroup,
    keyholdUrl: required(env, 'KEYHOLD_URL'),
    caFile: required(env, 'KEYHOLD_CA_FILE'),
    certFile: required(env, 'KEYHOLD_CERT_FILE'),
    keyFile: required(env, 'KEYHOLD_KEY_FILE'),
    keyName,
    keyIdSuffix: get(env, 'KEYHOLD_KMS_KEY_ID_SUFFIX'),
    healthAddress,
    refreshIntervalMs: number(env, 'KEYHOLD_KMS_REFRESH_INTERVAL_SECONDS', 0.05, 3600) * 1000,
    probeIntervalMs: number(env, 'KEYHOLD_KMS_PROBE_INTERVAL_SECONDS', 0.05, 86400) * 1000,
    upstreamTimeoutMs: number(env, 'KEYHOLD_KMS_UPSTREAM_TIMEOUT_MS', 50, 60_000, true),
    upstreamConcurrency: number(env, 'KEYHOLD_KMS_UPSTREAM_CONCURRENCY', 1, 10_000, true),
    upstreamConnections: number(env, 'KEYHOLD_KMS_UPSTREAM_CONNECTIONS', 1, 1000, true),
    drainTimeoutMs: number(env, 'KEYHOLD_KMS_DRAIN_TIMEOUT_MS', 0, 600_000, true),
    logLevel,
  };
}
