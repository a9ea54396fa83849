import { Logger } from '@nestjs/common';
import type { DataSource, EntityManager } from 'typeorm';
import { ApiError, type AuditCheckpointView, type AuditExportLine, type AuditPruneView, type AuditRetentionView, auditCheckpointFromRow } from '@keyhold/contracts';
import { type AuditChainPoint, GENESIS_HASH, signPrune, verifyCheckpointSignature, verifyPruneSignature } from '@keyhold/crypto-core';
import { type AuditArchiveFile, AuditArchiveWriter } from './audit-archive';
import type { AuditKeys } from './audit-keys';
import { AuditQueries } from './audit-queries';
import type { AuditScope } from './audit-scope';
import { CHAIN_VERIFY_PAGE, verifyStoredChain } from './stored-chain';

export const DEFAULT_AUDIT_MIN_RETENTION_DAYS = 90;
/**
 * The most records one prune removes. It re-verifies them on the instance that runs it and removes them in one
 * transaction, within the approving request (a million took 18 s, docs/audit.md): a bounded step keeps that to
 * about a minute and a half.
 */
export const MAX_PRUNE_RECORDS = 5_000_000;
const RETENTION_CANDIDATES = 20;
const DAY_MS = 86_400_000;
/** The standing retention's setting in keyhold_settings (days; absent: prune only by request). */
const RETENTION_POLICY_SETTING = 'audit_retention_days';
/** How often each instance looks for records the standing retention has made due. */
export const DEFAULT_RETENTION_INTERVAL_MS = 60 * 60_000;
/** Prunes one pass makes at most (each up to MAX_PRUNE_RECORDS): a larger backlog is worked off over passes. */
const PRUNES_PER_PASS = 4;

type Signing = NonNullable<Awaited<ReturnType<AuditKeys['signing']>>>;

/** The standing retention: who records its prunes, and how often it looks. */
export interface RetentionSchedule {
  /** Records the prunes it makes (`system:retention`). */
  audit: AuditScope;
  intervalMs: number;
}

/** What a prune removed, the signed statement it left, and the archive of what it removed (when archiving). */
export interface AuditPruneResult {
  prune: AuditPruneView;
  recordsRemoved: number;
  checkpointsRemoved: number;
  archive: AuditArchiveFile | null;
}

/**
 * Audit retention (docs/audit.md): removes the records through a signed checkpoint, once they are older than the
 * minimum retention, in one transaction that also removes the checkpoints before it, leaves a prune signed with
 * the checkpoint key (the start later verification anchors on) and records itself in the chain.
 *
 * What is removed is evidence, so it is re-verified first: from the previous prune (or the genesis) to the
 * checkpoint, which must be validly signed and the chain must pass through it. A range that does not verify is
 * refused and nothing is removed. With an archive folder (KEYHOLD_AUDIT_ARCHIVE_DIR) the verified records go into a
 * file there first, complete on disk before anything is deleted; without one, operators archive with `kmsctl audit
 * export` of the range, verified, kept elsewhere.
 *
 * Prunes are made by request (an approved operation), or by a standing retention that admins approved once
 * (`set-audit-retention`): every instance then looks each interval for the latest checkpoint older than it, and
 * prunes through it in bounded steps, each recorded as by `system:retention`.
 */
export class AuditPruner {
  private readonly logger = new Logger('AuditPruner');
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private failedPasses = 0;
  /** Records this instance pruned, and the bytes of the archives it wrote first (committed prunes only): for the metrics. */
  readonly pruned = { records: 0, archivedBytes: 0 };

  constructor(
    private readonly dataSource: DataSource,
    private readonly keys: AuditKeys,
    private readonly minRetentionDays: number,
    private readonly now: () => Date,
    private readonly schedule: RetentionSchedule | null = null,
    /** KEYHOLD_AUDIT_ARCHIVE_DIR: every prune first writes what it removes there (null: operators archive). */
    private readonly archiveFolder: string | null = null,
  ) {}

  start(): void {
    if (!this.schedule) return;
    this.timer = setInterval(() => void this.pruneDue().catch(() => undefined), this.schedule.intervalMs);
    this.timer.unref();
  }

  stop(): Promise<unknown> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return this.running ?? Promise.resolve();
  }

  /** Passes of the standing retention that failed (a range that does not verify, the database away): for the metrics. */
  get retentionFailures(): number {
    return this.failedPasses;
  }

  private committed(result: AuditPruneResult): AuditPruneResult {
    this.pruned.records += result.recordsRemoved;
    this.pruned.archivedBytes += result.archive?.bytes ?? 0;
    return result;
  }

  /** The standing retention in days (null: prune only by request). */
  async policyDays(): Promise<number | null> {
    const [row] = await this.dataSource.query(`SELECT value FROM keyhold_settings WHERE name = $1`, [RETENTION_POLICY_SETTING]);
    return row ? Number(row.value) : null;
  }

  /** Refuses a standing retention shorter than the minimum retention (which no prune goes below anyway). */
  checkPolicy(days: number | null): void {
    if (days !== null && days < this.minRetentionDays) {
      throw new ApiError(
        'VALIDATION_FAILED',
        `a retention of ${days} days is shorter than the minimum retention of this server, ${this.minRetentionDays} days (KEYHOLD_AUDIT_MIN_RETENTION_DAYS)`,
      );
    }
  }

  /** Sets (or, with null, ends) the standing retention, recorded as `audit.set-retention` in the same transaction. */
  async setPolicy(days: number | null, audit?: AuditScope): Promise<{ days: number | null }> {
    this.checkPolicy(days);
    await this.dataSource.transaction(async (manager) => {
      if (days === null) {
        await manager.query(`DELETE FROM keyhold_settings WHERE name = $1`, [RETENTION_POLICY_SETTING]);
      } else {
        await manager.query(
          `INSERT INTO keyhold_settings (name, value, updated_at) VALUES ($1, $2, $3)
           ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`,
          [RETENTION_POLICY_SETTING, JSON.stringify(days), this.now()],
        );
      }
      await audit?.record(manager, { operation: 'audit.set-retention', keyName: null, keyVersion: null });
    });
    return { days };
  }

  /**
   * One pass of the standing retention: prunes through the latest checkpoint older than it, in steps of at most
   * MAX_PRUNE_RECORDS, up to PRUNES_PER_PASS of them. Nothing while sealed or without a policy. A prune refused
   * because its records do not verify is logged as an error: that is evidence of tampering, and it stays.
   */
  pruneDue(): Promise<AuditPruneResult[]> {
    const schedule = this.schedule;
    const pass = (async () => {
      const results: AuditPruneResult[] = [];
      if (!schedule) return results;
      try {
        const days = await this.policyDays();
        const signing = days === null ? null : await this.keys.signing();
        if (days === null || !signing) return results;
        for (let step = 0; step < PRUNES_PER_PASS; step += 1) {
          const pruned = await this.dataSource.transaction(async (manager) => {
            await lockPrunes(manager);
            const through = await this.dueCheckpoint(manager, days);
            return through === null ? null : this.pruneLocked(manager, signing, through, schedule.audit);
          });
          if (!pruned) break;
          results.push(this.committed(pruned));
          this.logger.log({ msg: 'audit records pruned by the standing retention', throughSequence: pruned.prune.throughSequence, records: pruned.recordsRemoved, archive: pruned.archive?.file });
        }
      } catch (error) {
        this.failedPasses += 1;
        this.logger.error({ msg: 'the standing audit retention could not prune', err: (error as Error).message });
        throw error;
      }
      return results;
    })();
    this.running = pass.finally(() => (this.running = null)).catch(() => undefined);
    return pass;
  }

  /** The latest checkpoint older than `days` (and the minimum retention) within one prune's reach of the previous prune. */
  private async dueCheckpoint(manager: EntityManager, days: number): Promise<number | null> {
    const after = (await new AuditQueries(manager).latestPrune())?.throughSequence ?? 0;
    const [row] = await manager.query(
      'SELECT sequence FROM keyhold_audit_checkpoints WHERE time <= $1 AND sequence > $2 AND sequence <= $3 ORDER BY time DESC, sequence DESC LIMIT 1',
      [this.cutoff(Math.max(days, this.minRetentionDays)), after, after + MAX_PRUNE_RECORDS],
    );
    return row ? Number(row.sequence) : null;
  }

  /** Where the chain starts, and the checkpoints a prune may go through now (what the console offers). */
  async retention(): Promise<AuditRetentionView> {
    const cutoff = this.cutoff();
    const prune = await new AuditQueries(this.dataSource.manager).latestPrune();
    const [first] = await this.dataSource.query('SELECT min(sequence)::text AS sequence FROM keyhold_audit_records');
    const candidates: Array<Record<string, unknown>> = await this.dataSource.query(
      'SELECT * FROM keyhold_audit_checkpoints WHERE time <= $1 AND sequence > $2 ORDER BY time DESC, sequence DESC LIMIT $3',
      [cutoff, prune?.throughSequence ?? 0, RETENTION_CANDIDATES],
    );
    return {
      minRetentionDays: this.minRetentionDays,
      cutoff: cutoff.toISOString(),
      prune,
      firstSequence: first?.sequence ? Number(first.sequence) : null,
      candidates: candidates.map(auditCheckpointFromRow),
      maxRecordsPerPrune: MAX_PRUNE_RECORDS,
      policyDays: await this.policyDays(),
      archiving: this.archiveFolder !== null,
    };
  }

  /** Refuses now what would be refused when the approved operation runs (it is checked again then, in full). */
  async checkPrunable(throughSequence: number): Promise<void> {
    await this.prerequisites(this.dataSource.manager, throughSequence);
  }

  async prune(throughSequence: number, audit?: AuditScope): Promise<AuditPruneResult> {
    const signing = await this.keys.signing();
    if (!signing) throw new ApiError('SEALED', 'Keyhold is sealed: the audit signing key is not open');
    const result = await this.dataSource.transaction(async (manager) => {
      await lockPrunes(manager);
      return this.pruneLocked(manager, signing, throughSequence, audit);
    });
    return this.committed(result);
  }

  /** The prune itself, in a transaction that holds the prunes' lock. */
  private async pruneLocked(manager: EntityManager, signing: Signing, throughSequence: number, audit?: AuditScope): Promise<AuditPruneResult> {
    const { checkpoint, previous, from } = await this.prerequisites(manager, throughSequence);
    if (!verifyCheckpointSignature(signing.publicKeyPem, checkpoint)) {
      throw new ApiError('INVALID_STATE', `checkpoint #${throughSequence} does not verify under the audit public key: nothing was pruned`);
    }
    if (previous && !verifyPruneSignature(signing.publicKeyPem, previous)) {
      throw new ApiError('INVALID_STATE', `the previous prune (through #${previous.throughSequence}) does not verify under the audit public key: nothing was pruned`);
    }
    const archive = await this.verifyAndArchive(manager, signing, from, checkpoint, previous);
    const prune = signPrune(signing.privateKeyDer, {
      throughSequence,
      anchorHash: checkpoint.headHash,
      time: this.now().toISOString(),
      keyFingerprint: signing.fingerprint,
    });
    await manager.query(
      'INSERT INTO keyhold_audit_prunes (through_sequence, anchor_hash, time, key_fingerprint, signature) VALUES ($1, $2, $3, $4, $5)',
      [prune.throughSequence, prune.anchorHash, prune.time, prune.keyFingerprint, prune.signature],
    );
    const [, recordsRemoved]: [unknown, number] = await manager.query('DELETE FROM keyhold_audit_records WHERE sequence <= $1', [throughSequence]);
    // The checkpoint pruned through stays: the checkpointer signs on from the latest one.
    const [, checkpointsRemoved]: [unknown, number] = await manager.query('DELETE FROM keyhold_audit_checkpoints WHERE sequence < $1', [throughSequence]);
    await audit?.record(manager, { operation: 'audit.prune', keyName: null, keyVersion: null });
    return { prune, recordsRemoved, checkpointsRemoved, archive };
  }

  /**
   * Re-verifies the records to remove, from the previous prune (or the genesis) to the checkpoint; when archiving,
   * writes them to the archive as they verify (what it holds is what was checked), and the archive is complete on
   * disk when this returns. Throws, removing nothing and leaving no file, when either fails.
   */
  private async verifyAndArchive(
    manager: EntityManager,
    signing: Signing,
    from: AuditChainPoint,
    checkpoint: AuditCheckpointView,
    previous: AuditPruneView | null,
  ): Promise<AuditArchiveFile | null> {
    const through = checkpoint.sequence;
    const step = <T>(run: () => Promise<T>) => archiving(from, through, run);
    const folder = this.archiveFolder;
    const archive = folder ? await step(() => AuditArchiveWriter.create(folder, from.sequence + 1, through)) : null;
    try {
      if (archive) {
        const header: AuditExportLine = {
          type: 'header',
          format: 'keyhold-audit-export-v1',
          exportedAt: this.now().toISOString(),
          filters: { fromSequence: from.sequence + 1, toSequence: through },
          keyFingerprint: signing.fingerprint,
        };
        await step(() => archive.write(previous ? [header, { type: 'prune', ...previous }] : [header]));
      }
      const broken = await verifyStoredChain(
        (sql, parameters) => manager.query(sql, parameters),
        from,
        { sequence: through, hash: checkpoint.headHash },
        CHAIN_VERIFY_PAGE,
        async (records) => {
          if (archive) await step(() => archive.write(records.map((record) => ({ type: 'record', ...record }))));
          return null;
        },
      );
      if (broken) {
        throw new ApiError(
          'INVALID_STATE',
          `the records to prune do not verify (${broken}): they are evidence, and nothing was pruned; find the first broken link with kmsctl audit verify`,
        );
      }
      if (!archive) return null;
      const checkpoints: Array<Record<string, unknown>> = await manager.query(
        'SELECT * FROM keyhold_audit_checkpoints WHERE sequence >= $1 AND sequence <= $2 ORDER BY sequence',
        [from.sequence, through],
      );
      await step(() => archive.write(checkpoints.map((row) => ({ type: 'checkpoint', ...auditCheckpointFromRow(row) }))));
      return await step(() => archive.finish());
    } catch (error) {
      await archive?.abort();
      throw error;
    }
  }

  /**
   * The checkpoint to prune through, and the signed point the records before it continue from (the previous prune,
   * or the genesis): refused unless the checkpoint exists, lies past the previous prune, and its record is older than
   * the minimum retention.
   */
  private async prerequisites(manager: EntityManager, throughSequence: number) {
    const [row] = await manager.query('SELECT * FROM keyhold_audit_checkpoints WHERE sequence = $1', [throughSequence]);
    if (!row) {
      throw new ApiError('VALIDATION_FAILED', `there is no signed checkpoint at #${throughSequence}: records are pruned through a checkpoint (GET /api/v1/audit/checkpoints lists them)`);
    }
    const checkpoint = auditCheckpointFromRow(row);
    const previous = await new AuditQueries(manager).latestPrune();
    if (previous && previous.throughSequence >= throughSequence) {
      throw new ApiError('INVALID_STATE', `the records through #${previous.throughSequence} were already pruned (${previous.time})`);
    }
    const start = (previous?.throughSequence ?? 0) + 1;
    if (throughSequence - start + 1 > MAX_PRUNE_RECORDS) {
      throw new ApiError(
        'VALIDATION_FAILED',
        `#${start}..#${throughSequence} is more than ${MAX_PRUNE_RECORDS} records for one prune: prune through an earlier checkpoint first, then on from there`,
      );
    }
    const [record] = await manager.query('SELECT time FROM keyhold_audit_records WHERE sequence = $1', [throughSequence]);
    const cutoff = this.cutoff();
    const newest = (record?.time as Date | undefined) ?? new Date(checkpoint.time);
    if (newest > cutoff) {
      throw new ApiError(
        'INVALID_STATE',
        `record #${throughSequence} is from ${newest.toISOString()}: records are kept at least ${this.minRetentionDays} day${this.minRetentionDays === 1 ? '' : 's'} ` +
          `(KEYHOLD_AUDIT_MIN_RETENTION_DAYS), so prune through a checkpoint of a record before ${cutoff.toISOString()}`,
      );
    }
    const from: AuditChainPoint = previous ? { sequence: previous.throughSequence, hash: previous.anchorHash } : { sequence: 0, hash: GENESIS_HASH };
    return { checkpoint, previous, from };
  }

  /** The time before which records are `days` old (by default the minimum retention). */
  private cutoff(days: number = this.minRetentionDays): Date {
    return new Date(this.now().getTime() - days * DAY_MS);
  }
}

/** A file-system failure while archiving refuses the prune (503: a full or read-only disk passes), removing nothing. */
async function archiving<T>(from: AuditChainPoint, throughSequence: number, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ApiError('UNAVAILABLE', `the archive of #${from.sequence + 1}..#${throughSequence} could not be written in KEYHOLD_AUDIT_ARCHIVE_DIR (${code}): nothing was pruned`);
  }
}

/** One prune at a time, across instances; readers (kmsctl, exports) are not held up. */
async function lockPrunes(manager: EntityManager): Promise<void> {
  await manager.query('LOCK TABLE keyhold_audit_prunes IN EXCLUSIVE MODE');
}
