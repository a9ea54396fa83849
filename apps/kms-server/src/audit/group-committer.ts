export interface GroupCommitOptions {
  /**
   * How long the first queued item waits for company before its batch is written. 0 (the default): no wait
   * beyond the current turn of the event loop; batches then form by themselves while a write is in flight.
   */
  maxDelayMs: number;
  /** A batch this large is written at once, without waiting out the delay. */
  maxBatch: number;
}

interface Waiting<TItem, TResult> {
  item: TItem;
  queuedAt: number;
  resolve(result: TResult): void;
  reject(error: unknown): void;
}

/**
 * Group commit: callers `submit` one item each and wait; items are written in batches by one `write` call
 * (one statement, one multi-row INSERT). A batch goes when `maxBatch` items are queued or when its oldest item
 * has waited `maxDelayMs`, and one batch is in flight at a time: under load each write carries everything
 * that queued meanwhile, and a write costs the same for one record as for fifty. Each caller gets its own
 * item's result, or the batch's error.
 */
export class GroupCommitter<TItem, TResult> {
  private queue: Array<Waiting<TItem, TResult>> = [];
  private timer: { cancel(): void } | null = null;
  private inFlight: Promise<void> | null = null;
  /** Batches written, for tests and metrics: fewer than items under concurrency is the point. */
  batches = 0;

  constructor(
    private readonly write: (items: TItem[]) => Promise<TResult[]>,
    private readonly options: GroupCommitOptions,
  ) {}

  submit(item: TItem): Promise<TResult> {
    return new Promise<TResult>((resolve, reject) => {
      this.queue.push({ item, queuedAt: Date.now(), resolve, reject });
      if (this.inFlight) return; // the running batch schedules the next one when it is done
      if (this.queue.length >= this.options.maxBatch) this.flushNow();
      else this.timer ??= this.later(this.options.maxDelayMs);
    });
  }

  /** A flush after `ms`; with 0, after the requests already read in this turn of the event loop. */
  private later(ms: number): { cancel(): void } {
    if (ms <= 0) {
      const immediate = setImmediate(() => this.flushNow());
      return { cancel: () => clearImmediate(immediate) };
    }
    const timeout = setTimeout(() => this.flushNow(), ms);
    return { cancel: () => clearTimeout(timeout) };
  }

  /** Resolves once everything submitted so far is written (or failed). */
  async drain(): Promise<void> {
    while (this.inFlight || this.queue.length > 0) {
      if (!this.inFlight) this.flushNow();
      await this.inFlight;
    }
  }

  private flushNow(): void {
    this.timer?.cancel();
    this.timer = null;
    if (this.inFlight || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.options.maxBatch);
    this.batches += 1;
    this.inFlight = this.writeBatch(batch).finally(() => {
      this.inFlight = null;
      if (this.queue.length === 0) return;
      // What queued meanwhile goes when its oldest item has waited the delay (at once if it already has).
      const wait = this.queue[0].queuedAt + this.options.maxDelayMs - Date.now();
      if (wait <= 0 || this.queue.length >= this.options.maxBatch) this.flushNow();
      else this.timer ??= this.later(wait);
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
