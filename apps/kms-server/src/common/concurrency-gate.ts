import { RateLimitedError } from '@keyhold/auth';

export interface ConcurrencyGateOptions {
  /** How many run at once. */
  limit: number;
  /** How many more may wait their turn (in arrival order); the rest are refused at once. */
  maxWaiting: number;
  /** The Retry-After of a refusal. */
  retryAfterSeconds: number;
  /** What a refusal says was busy, e.g. "an audit export is already running on this instance". */
  busy: string;
}

/**
 * Bounds how many requests of one costly kind run at once on this instance. Per-caller rate limits do not:
 * many callers (or many source addresses) each within their limit can still queue unbounded CPU or memory.
 * Beyond `limit` running and `maxWaiting` waiting, a request is refused at once with 429 and a Retry-After.
 */
export class ConcurrencyGate {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly options: ConcurrencyGateOptions) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.running < this.options.limit) this.running += 1;
    else if (this.waiting.length < this.options.maxWaiting) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else throw new RateLimitedError(this.options.retryAfterSeconds, this.options.busy);
    try {
      return await work();
    } finally {
      // A waiting request takes the place over directly: nothing arriving meanwhile can overtake it.
      const next = this.waiting.shift();
      if (next) next();
      else this.running -= 1;
    }
  }
}
