import { Logger } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import type { MasterKeyStatusView } from '@keyhold/contracts';
import type { MasterKey } from '../seal/master-key';
import type { RewrapCursor, RewrapTarget } from './rewrap-targets';

/** Arbitrary but fixed: the advisory lock that makes one instance at a time the rewrapper. */
const REWRAP_LOCK_ID = 0x6b6579_02;

export interface RewrapOptions {
  /** Rows per transaction. */
  batchSize: number;
  /** Pause between batches, so a rewrap of millions of rows does not starve the service plane. */
  paceMs: number;
  /** How often every instance checks for work (a crash mid-rewrap, a row a late instance wrote under an old version). */
  intervalMs: number;
}

export type RewrapProgress = MasterKeyStatusView['rewrap'];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Moves every wrapped or sealed secret onto the newest master-key version, batch by batch, each batch in its
 * own transaction. Nothing is kept between batches but a cursor in memory: a crash (kill -9) loses at most the
 * batch in flight, which rolls back, and the next pass (at start, on a timer, after a rotation) finds what is
 * left by its master_key_version alone. A session advisory lock makes one instance at a time do it; the lock
 * dies with the process. Keys stay usable throughout: a row is either under its old (still live) version or
 * under the new one, and the material inside, which the keyring cache holds, does not change.
 */
export class MasterKeyRewrapJob {
  private readonly logger = new Logger(MasterKeyRewrapJob.name);
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private started = false;
  private stopped = false;
  private progress: RewrapProgress = { state: 'idle', lastPass: null };

  constructor(
    private readonly dataSource: DataSource,
    private readonly masterKey: MasterKey,
    private readonly targets: readonly RewrapTarget[],
    private readonly options: RewrapOptions,
    /** True while sealed or not loaded: nothing can be unwrapped. */
    private readonly paused: () => boolean,
  ) {}

  start(): void {
    this.started = true;
    this.stopped = false;
    this.timer = setInterval(() => this.trigger(), this.options.intervalMs);
    this.timer.unref();
    this.trigger();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  status(): RewrapProgress {
    return structuredClone(this.progress);
  }

  /**
   * Runs a pass soon, once started (an instance started without background work, like a test's, waits for
   * runOnce); a trigger during a pass runs one more after it (the newest version may have moved).
   */
  trigger(): void {
    if (this.started) this.kick();
  }

  private kick(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.passes().finally(() => {
      this.running = null;
    });
  }

  /** A pass now, resolved when it (and any pass it triggered) is over. For tests and the admin API. */
  async runOnce(): Promise<void> {
    this.kick();
    while (this.running) await this.running;
  }

  private async passes(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.pass();
      } catch (error) {
        const message = (error as Error).message;
        if (this.progress.lastPass) {
          this.progress.lastPass.error = message;
          this.progress.lastPass.finishedAt = new Date().toISOString();
        }
        this.logger.warn({ msg: 'master-key rewrap pass failed; it resumes on the next pass', err: message });
      } finally {
        this.progress.state = 'idle';
      }
    } while (this.again && !this.stopped);
    this.again = false;
  }

  private async pass(): Promise<void> {
    if (this.paused() || this.stopped) return;
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    try {
      const [{ locked }] = await runner.query('SELECT pg_try_advisory_lock($1) AS locked', [REWRAP_LOCK_ID]);
      if (!locked) return;
      try {
        this.progress = {
          state: 'running',
          lastPass: { startedAt: new Date().toISOString(), finishedAt: null, rewrapped: 0, damaged: 0, error: null },
        };
        const pass = this.progress.lastPass as NonNullable<RewrapProgress['lastPass']>;
        for (const target of this.targets) {
          let cursor: RewrapCursor = null;
          do {
            if (this.paused() || this.stopped) return;
            const result = await this.dataSource.transaction((manager) =>
              target.rewrapBatch(manager, this.masterKey, this.options.batchSize, cursor),
            );
            pass.rewrapped += result.rewrapped;
            pass.damaged += result.damaged;
            cursor = result.cursor;
            if (cursor && this.options.paceMs > 0) await sleep(this.options.paceMs);
          } while (cursor);
        }
        pass.finishedAt = new Date().toISOString();
        if (pass.rewrapped > 0 || pass.damaged > 0) {
          this.logger.log({ msg: 'master-key rewrap pass', masterKeyVersion: this.masterKey.version, rewrapped: pass.rewrapped, damaged: pass.damaged });
        }
      } finally {
        await runner.query('SELECT pg_advisory_unlock($1)', [REWRAP_LOCK_ID]);
      }
    } finally {
      await runner.release();
    }
  }
}
