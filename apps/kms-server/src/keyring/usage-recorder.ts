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
  private flushing: Promise<void> | null = null;
  /** The batch a flush is writing, until it is in Postgres (or back in `pending` after a failure). */
  private writing = new Map<string, PendingUsage>();

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
    await this.flush(); // may be a flush that began earlier: the second takes what came after it
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
    const id = `${keyId}:${version}`;
    // What a flush is writing right now is in neither place yet for a reader: count it here.
    const entries = [this.pending.get(id), this.writing.get(id)].filter((entry): entry is PendingUsage => entry !== undefined);
    if (entries.length === 0) return { count: 0, lastUsedAt: null };
    const lastUsedAt = entries.map((entry) => entry.lastUsedAt).reduce((a, b) => (a > b ? a : b));
    return { count: entries.reduce((sum, entry) => sum + entry.count, 0), lastUsedAt };
  }

  /**
   * Writes the counts gathered so far. One flush at a time: with the database hanging, the interval would
   * otherwise take one more pooled connection every few seconds until none is left for anything else.
   */
  flush(): Promise<void> {
    this.flushing ??= this.writePending().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async writePending(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    this.writing = batch;
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
    } finally {
      this.writing = new Map();
    }
  }
}
