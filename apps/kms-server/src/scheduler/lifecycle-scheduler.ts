import { Logger } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import type { Clock } from '@keyhold/key-lifecycle';
import type { KeysService } from '../keys/keys.service';
import type { TypeormKeyRepository } from '../persistence/typeorm-key.repository';

/** Arbitrary but fixed: the advisory lock that makes one instance at a time the scheduler. */
const SCHEDULER_LOCK_ID = 0x6b6579_01;
const BATCH = 100;

export interface SchedulerPass {
  ran: boolean;
  rotated: string[];
  destroyed: Array<{ key: string; versions: number[]; keyDestroyed: boolean }>;
}

/**
 * Automatic rotation and due destructions. Each pass takes a session-level advisory lock on one pooled
 * connection: when several instances share a database, exactly one does the work and the others skip.
 */
export class LifecycleScheduler {
  private readonly logger = new Logger(LifecycleScheduler.name);
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<SchedulerPass> | null = null;

  constructor(
    private readonly dataSource: DataSource,
    private readonly repository: TypeormKeyRepository,
    private readonly keys: KeysService,
    private readonly clock: Clock,
    private readonly intervalMs: number,
    /** True while Keyhold is sealed: a pass then does nothing (no key is unwrapped, rotated or destroyed). */
    private readonly paused: () => boolean = () => false,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.runOnce().catch((error: Error) =>
        this.logger.warn({ msg: 'scheduler pass failed; will retry', err: error.message }),
      );
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  /** One pass now. Concurrent calls in one instance share the pass in progress. */
  runOnce(): Promise<SchedulerPass> {
    this.running ??= this.pass().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pass(): Promise<SchedulerPass> {
    const outcome: SchedulerPass = { ran: false, rotated: [], destroyed: [] };
    if (this.paused()) return outcome;
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    try {
      const [{ locked }] = await runner.query('SELECT pg_try_advisory_lock($1) AS locked', [SCHEDULER_LOCK_ID]);
      if (!locked) return outcome;
      try {
        outcome.ran = true;
        const seen = new Set<string>();
        for (;;) {
          const due = (await this.repository.findDueWork(this.clock.now(), BATCH)).filter((name) => !seen.has(name));
          if (due.length === 0) break;
          for (const name of due) {
            // Sealed during the pass: nothing more is done, destructions included (they need no master key).
            if (this.paused()) return outcome;
            seen.add(name);
            const result = await this.keys.runDueWork(name);
            if (!result) continue;
            if (result.rotated) outcome.rotated.push(name);
            if (result.destroyedVersions.length > 0) {
              outcome.destroyed.push({ key: name, versions: result.destroyedVersions, keyDestroyed: result.keyDestroyed });
            }
          }
        }
      } finally {
        await runner.query('SELECT pg_advisory_unlock($1)', [SCHEDULER_LOCK_ID]);
      }
    } finally {
      await runner.release();
    }
    if (outcome.rotated.length || outcome.destroyed.length) {
      this.logger.log({ msg: 'scheduler pass', rotated: outcome.rotated, destroyed: outcome.destroyed });
    }
    return outcome;
  }
}
