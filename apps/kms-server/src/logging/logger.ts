import type { LoggerService } from '@nestjs/common';
import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * Field names whose values never reach a log line, wherever they appear in a logged object. Secrets should
 * not be handed to the logger at all; this is the net under that rule, and a test checks it holds.
 */
export const REDACTED_FIELDS = [
  'plaintext',
  'key',
  'keyMaterial',
  'material',
  'masterKey',
  'passphrase',
  'password',
  'privateKey',
  'privateKeyPem',
  'token',
  'secret',
  'share',
  'shares',
  'pin',
  'context',
  'authorization',
  'cookie',
  'databaseUrl',
];

const REDACT_PATHS = REDACTED_FIELDS.flatMap((field) => [field, `*.${field}`, `*.*.${field}`]);

/** Strips credentials from connection strings that end up in error messages (pg puts URLs in some). */
export function scrubMessage(message: string): string {
  return message.replace(/(\w+:\/\/[^:/\s@]+:)[^@\s]+@/g, '$1[REDACTED]@');
}

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'keyhold' },
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination,
  );
}

/** Nest's start-up narration (every module and route), worth seeing only at debug level. */
const FRAMEWORK_CHATTER = new Set(['InstanceLoader', 'RoutesResolver', 'RouterExplorer', 'NestFactory', 'NestApplication']);

/** Nest's logger interface over pino, so framework messages get the same redaction and JSON shape. */
export class KeyholdLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  get pino(): Logger {
    return this.logger;
  }

  log(message: unknown, ...rest: unknown[]): void {
    const component = rest[rest.length - 1];
    this.write(typeof component === 'string' && FRAMEWORK_CHATTER.has(component) ? 'debug' : 'info', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.write('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.write('warn', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.write('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.write('trace', message, rest);
  }

  private write(level: 'info' | 'error' | 'warn' | 'debug' | 'trace', message: unknown, rest: unknown[]): void {
    const contextName = typeof rest[rest.length - 1] === 'string' ? (rest[rest.length - 1] as string) : undefined;
    if (message instanceof Error) {
      this.logger[level]({ component: contextName, err: { name: message.name, message: scrubMessage(message.message) } });
      return;
    }
    if (typeof message === 'object' && message !== null) {
      this.logger[level]({ component: contextName, ...message });
      return;
    }
    this.logger[level]({ component: contextName }, scrubMessage(String(message)));
  }
}
