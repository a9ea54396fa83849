import { Logger } from '@nestjs/common';

interface PendingUsage {
  keyId: string;
  version: number;
  count: number;
  lastUsedAt: Date;
}

export interface UsageSink {
  addUsage(entries: ReadonlyArray<{ keyId: string; version: number; count: number; lastUsedAt: Date }>): Promise<void>;
}

/**
 * Counts encryptions per key version in memory and adds them to Postgres in one statement every few seconds:
 * the count is for operators (and NIST-style usage limits), and must not cost a write per request.
 */
export class UsageRecorder {
  private readonly logger = new Logger(UsageRecorder.name);
  private pending = new Map<string, PendingUsage>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly sink: UsageSink,
    private readonly flushIntervalMs: number,
    private readonly now: () => Date = () => new Date(),
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.flushIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }

  /** `encryptions` is 0 for a use that made no new ciphertext (a decrypt): it still counts as last use. */
  record(keyId: string, version: number, encryptions: number): void {
    const id = `${keyId}:${version}`;
    const entry = this.pending.get(id);
    if (entry) {
      entry.count += encryptions;
      entry.lastUsedAt = this.now();
    } else {
      this.pending.set(id, { keyId, version, count: encryptions, lastUsedAt: this.now() });
    }
  }

  /** Usage counted here and not yet in Postgres, so that metadata reads are exact. */
  pendingFor(keyId: string, version: number): { count: number; lastUsedAt: Date | null } {
    const entry = this.pending.get(`${keyId}:${version}`);
    return entry ? { count: entry.count, lastUsedAt: entry.lastUsedAt } : { count: 0, lastUsedAt: null };
  }

  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    try {
      await this.sink.addUsage([...batch.values()]);
    } catch (error) {
      // Keep the counts for the next attempt rather than lose them while the database is away.
      for (const [id, entry] of batch) {
        const newer = this.pending.get(id);
        if (newer) {
          newer.count += entry.count;
        } else {
          this.pending.set(id, entry);
        }
      }
      this.logger.warn({ msg: 'usage counters not flushed; will retry', err: (error as Error).message });
    }
  }
}
