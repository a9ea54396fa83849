import { Logger } from '@nestjs/common';
import { FreshRun } from '../common/fresh-run';

/**
 * How often every instance re-reads, whatever notifications it got, the state that must reach it: grants,
 * revocations, the seal generation and the master-key versions. It bounds how long a lost notification (a half-open listener connection
 * not yet found out by its heartbeat, a NOTIFY dropped in a failover) can leave an instance behind.
 */
export const RESYNC_INTERVAL_MS = 60_000;

/**
 * The backstop behind LISTEN/NOTIFY: `resync` every `intervalMs`, in the background, never on a request. A pass
 * still running when the next is due is not doubled. `resync` logs and keeps the previous state on failure; the
 * next pass is the retry.
 */
export class PeriodicResync {
  private readonly logger = new Logger(PeriodicResync.name);
  private timer: NodeJS.Timeout | null = null;
  private readonly passes: FreshRun;
  private stopped = false;

  constructor(
    private readonly intervalMs: number,
    resync: () => Promise<void>,
  ) {
    // A pass queued before stop() does not start after it.
    this.passes = new FreshRun(async () => {
      if (this.stopped) return;
      await resync().catch((error: Error) => this.logger.warn({ msg: 'resync failed; retrying at the next one', err: error.message }));
    });
  }

  start(): void {
    if (this.timer) return;
    this.stopped = false;
    this.timer = setInterval(() => {
      if (this.passes.current) {
        this.logger.warn({ msg: 'the previous resync is still running; skipping this one' });
        return;
      }
      void this.runOnce();
    }, this.intervalMs);
    this.timer.unref();
  }

  /** No pass starts after this (not even one a reconnection of the listener asks for). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.passes.current;
  }

  /**
   * A pass that begins after this call (a reconnected listener must re-read what it missed, so a pass already
   * under way, which may have read before the disconnection, does not count). Calls during a pass share one
   * queued pass after it.
   */
  runOnce(): Promise<void> {
    return this.stopped ? Promise.resolve() : this.passes.run();
  }
}
