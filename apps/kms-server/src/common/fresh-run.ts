/**
 * Runs `work` (a re-read of something another instance or transaction may have changed) so that every caller
 * waits for a run that began after its call: a run already under way may have read before the caller's change.
 * Calls made during a run share one run queued after it, so bursts cost at most two.
 */
export class FreshRun {
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;

  constructor(private readonly work: () => Promise<void>) {}

  /** The run under way, if any. */
  get current(): Promise<void> | null {
    return this.running;
  }

  run(): Promise<void> {
    if (!this.running) {
      this.running = this.work().finally(() => {
        this.running = null;
      });
      return this.running;
    }
    const next = () => {
      this.queued = null;
      return this.run();
    };
    this.queued ??= this.running.then(next, next);
    return this.queued;
  }
}
