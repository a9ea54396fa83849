export interface GroupCommitOptions {
  /** How long the first queued item waits for company before its batch is written. */
  maxDelayMs: number;
  /** A batch this large is written at once, without waiting out the delay. */
  maxBatch: number;
}

interface Waiting<TItem, TResult> {
  item: TItem;
  resolve(result: TResult): void;
  reject(error: unknown): void;
}

/**
 * Group commit: callers `submit` one item each and wait; items are written in batches by one `write` call
 * (one transaction, one multi-row INSERT). A batch goes when `maxBatch` items are queued or `maxDelayMs` after
 * the first one, and one batch is in flight at a time, so under load each write carries everything that
 * queued while the previous one committed. Each caller gets its own item's result, or the batch's error.
 */
export class GroupCommitter<TItem, TResult> {
  private queue: Array<Waiting<TItem, TResult>> = [];
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  /** Batches written, for tests and metrics: fewer than items under concurrency is the point. */
  batches = 0;

  constructor(
    private readonly write: (items: TItem[]) => Promise<TResult[]>,
    private readonly options: GroupCommitOptions,
  ) {}

  submit(item: TItem): Promise<TResult> {
    return new Promise<TResult>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.inFlight) return; // the running batch picks these up when it is done
      if (this.queue.length >= this.options.maxBatch) this.flushNow();
      else this.timer ??= setTimeout(() => this.flushNow(), this.options.maxDelayMs);
    });
  }

  /** Resolves once everything submitted so far is written (or failed). */
  async drain(): Promise<void> {
    while (this.inFlight || this.queue.length > 0) {
      if (!this.inFlight) this.flushNow();
      await this.inFlight;
    }
  }

  private flushNow(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.inFlight || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.options.maxBatch);
    this.batches += 1;
    this.inFlight = this.writeBatch(batch).finally(() => {
      this.inFlight = null;
      // What queued meanwhile goes at once: it has already waited for a whole write.
      if (this.queue.length > 0) this.flushNow();
    });
  }

  private async writeBatch(batch: Array<Waiting<TItem, TResult>>): Promise<void> {
    try {
      const results = await this.write(batch.map((waiting) => waiting.item));
      batch.forEach((waiting, index) => waiting.resolve(results[index]));
    } catch (error) {
      for (const waiting of batch) waiting.reject(error);
    }
  }
}
