export interface GroupCommitOptions {
  /**
   * How long the first queued item waits for company before its batch is written. 0 (the default): no wait
   * beyond the current turn of the event loop; batches then form by themselves while a write is in flight.
   */
  maxDelayMs: number;
  /** A batch of this weight (records) is written at once; no batch is heavier, unless one item alone is. */
  maxBatch: number;
  /**
   * The most weight (records) waiting at a time; beyond it a submit is refused at once (QueueFullError) instead
   * of holding its caller, and its memory, for as long as the database is slow. Default: 100 × maxBatch (a
   * hundred thousand records by default: far above what clients in flight queue, far below what exhausts memory).
   */
  maxQueued?: number;
}

/** The queue already holds `maxQueued` records: the caller fails now (503) rather than piling up. */
export class QueueFullError extends Error {
  constructor() {
    super('too many records are waiting for the database');
    this.name = 'QueueFullError';
  }
}

interface Waiting<TItem, TResult> {
  item: TItem;
  weight: number;
  queuedAt: number;
  resolve(result: TResult): void;
  reject(error: unknown): void;
}

/**
 * Group commit: callers `submit` one item each and wait; items are written in batches by one `write` call
 * (one statement, one multi-row INSERT). A batch goes when `maxBatch` records are queued or when its oldest item
 * has waited `maxDelayMs`, and one batch is in flight at a time: under load each write carries everything
 * that queued meanwhile, and a write costs the same for one record as for fifty. An item weighs what `weigh`
 * says (the records it carries: a batch request brings one per item). Each caller gets its own item's result,
 * or the batch's error.
 */
export class GroupCommitter<TItem, TResult> {
  private queue: Array<Waiting<TItem, TResult>> = [];
  private queuedWeight = 0;
  private timer: { cancel(): void } | null = null;
  private inFlight: Promise<void> | null = null;
  private readonly maxQueued: number;
  /** Batches written, for tests and metrics: fewer than items under concurrency is the point. */
  batches = 0;

  /** Records (weight) waiting for a batch. */
  get queued(): number {
    return this.queuedWeight;
  }

  constructor(
    private readonly write: (items: TItem[]) => Promise<TResult[]>,
    private readonly options: GroupCommitOptions,
    private readonly weigh: (item: TItem) => number = () => 1,
  ) {
    this.maxQueued = options.maxQueued ?? options.maxBatch * 100;
  }

  submit(item: TItem): Promise<TResult> {
    const weight = Math.max(1, this.weigh(item));
    if (this.queuedWeight > 0 && this.queuedWeight + weight > this.maxQueued) return Promise.reject(new QueueFullError());
    return new Promise<TResult>((resolve, reject) => {
      this.queue.push({ item, weight, queuedAt: Date.now(), resolve, reject });
      this.queuedWeight += weight;
      if (this.inFlight) return; // the running batch schedules the next one when it is done
      if (this.queuedWeight >= this.options.maxBatch) this.flushNow();
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
    const batch = this.takeBatch();
    this.batches += 1;
    this.inFlight = this.writeBatch(batch).finally(() => {
      this.inFlight = null;
      if (this.queue.length === 0) return;
      // What queued meanwhile goes when its oldest item has waited the delay (at once if it already has).
      const wait = this.queue[0].queuedAt + this.options.maxDelayMs - Date.now();
      if (wait <= 0 || this.queuedWeight >= this.options.maxBatch) this.flushNow();
      else this.timer ??= this.later(wait);
    });
  }

  /** The oldest items up to `maxBatch` records (at least one item, however heavy). */
  private takeBatch(): Array<Waiting<TItem, TResult>> {
    let count = 0;
    let weight = 0;
    while (count < this.queue.length && (count === 0 || weight + this.queue[count].weight <= this.options.maxBatch)) {
      weight += this.queue[count].weight;
      count += 1;
    }
    this.queuedWeight -= weight;
    return this.queue.splice(0, count);
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
