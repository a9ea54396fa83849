import { Logger } from '@nestjs/common';
import type { Grant } from '@keyhold/contracts';
import { GrantPolicy, type GrantPolicySource } from '@keyhold/auth';
import { FreshRun } from '../common/fresh-run';
import type { GrantsRepository } from './grants.repository';

/**
 * The grants in force: those of the grants file (fixed at start-up) plus those managed in Postgres, which
 * are reloaded whenever any instance announces a change, after every reconnection of the notification
 * listener, and periodically (PeriodicResync) in case a notification was lost. A reload that fails keeps the
 * previous policy (a database outage must not turn into "deny everything" for warm services), is logged, and
 * is retried by the next periodic resync.
 */
export class DatabaseGrantPolicySource implements GrantPolicySource {
  private readonly logger = new Logger(DatabaseGrantPolicySource.name);
  private policy: GrantPolicy;
  private readonly reads = new FreshRun(() => this.load());

  constructor(
    private readonly fileGrants: readonly Grant[],
    private readonly repository: GrantsRepository,
  ) {
    this.policy = new GrantPolicy(fileGrants);
  }

  current(): GrantPolicy {
    return this.policy;
  }

  /**
   * Resolves once the grants were read after this call began (a change the caller just committed is in force).
   * Bursts coalesce into at most one read in flight plus one queued: a read already in flight may have begun
   * before the caller's change, so callers arriving meanwhile wait for the queued one.
   */
  reload(): Promise<void> {
    return this.reads.run();
  }

  private async load(): Promise<void> {
    try {
      const stored = await this.repository.list();
      this.policy = new GrantPolicy([...this.fileGrants, ...stored]);
    } catch (error) {
      this.logger.warn({ msg: 'grants not reloaded; keeping the previous ones until the next resync', err: (error as Error).message });
    }
  }
}
