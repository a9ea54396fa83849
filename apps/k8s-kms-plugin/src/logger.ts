/**
 * JSON lines on stderr. Callers pass only metadata (method, uid, key_id, codes, durations): never a
 * plaintext, a ciphertext, an annotation value or key material. That rule is kept at the call sites
 * and checked by the tests, which capture this output and search it for every secret they used.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export class Logger {
  constructor(
    private readonly level: LogLevel = 'info',
    private readonly write: (line: string) => void = (line) => process.stderr.write(line),
  ) {}

  debug(msg: string, fields: Record<string, unknown> = {}): void {
    this.log('debug', msg, fields);
  }
  info(msg: string, fields: Record<string, unknown> = {}): void {
    this.log('info', msg, fields);
  }
  warn(msg: string, fields: Record<string, unknown> = {}): void {
    this.log('warn', msg, fields);
  }
  error(msg: string, fields: Record<string, unknown> = {}): void {
    this.log('error', msg, fields);
  }

  private log(level: Exclude<LogLevel, 'silent'>, msg: string, fields: Record<string, unknown>): void {
    if (ORDER[level] < ORDER[this.level]) return;
    this.write(`${JSON.stringify({ time: new Date().toISOString(), level, component: 'k8s-kms-plugin', msg, ...fields })}\n`);
  }
}

export function isLogLevel(value: string): value is LogLevel {
  return value in ORDER;
}
