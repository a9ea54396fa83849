import { Logger } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { type AuditCheckpoint, signCheckpoint } from '@keyhold/crypto-core';
import type { AuditKeys } from './audit-keys';

export interface CheckpointPolicy {
  /** Sign a checkpoint at least this often while records are being added (0: no timer). */
  intervalMs: number;
  /** ... and as soon as this many records were added since the last one (0: no count). */
  everyRecords: number;
}

export const DEFAULT_CHECKPOINT_POLICY: CheckpointPolicy = { intervalMs: 60_000, everyRecords: 10_000 };

/**
 * Signs (sequence, chain head hash, time) with the audit Ed25519 key, every `intervalMs` and every
 * `everyRecords` records. Any instance may sign; a checkpoint at a sequence that already has one is skipped,
 * so several instances never conflict. Sealed, nothing is signed (the key cannot be opened).
 */
export class AuditCheckpointer {
  private readonly logger = new Logger('AuditCheckpointer');
  private timer: NodeJS.Timeout | null = null;
  private lastSigned = 0;
  private running: Promise<AuditCheckpoint | null> | null = null;

  constructor(
    private readonly dataSource: DataSource,
    private readonly keys: AuditKeys,
    private readonly policy: CheckpointPolicy,
    private readonly now: () => Date,
  ) {}

  start(): void {
    if (this.policy.intervalMs <= 0) return;
    this.timer = setInterval(() => void this.checkpoint().catch(() => undefined), this.policy.intervalMs);
    this.timer.unref();
  }

  stop(): Promise<unknown> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return this.running ?? Promise.resolve();
  }

  /** Called after every append of this instance: signs once enough records have piled up. */
  noticeHead(headSequence: number): void {
    if (this.policy.everyRecords > 0 && headSequence - this.lastSigned >= this.policy.everyRecords && !this.running) {
      void this.checkpoint().catch(() => undefined);
    }
  }

  /** Signs the current head now (null when sealed, or nothing new since the last checkpoint). */
  checkpoint(): Promise<AuditCheckpoint | null> {
    this.running ??= this.sign().finally(() => (this.running = null));
    return this.running;
  }

  private async sign(): Promise<AuditCheckpoint | null> {
    const [head] = await this.dataSource.query(`SELECT sequence::text AS sequence, hash FROM keyhold_audit_chain_head WHERE id = 1`);
    const sequence = Number(head?.sequence ?? 0);
    if (sequence === 0) return null;
    const [latest] = await this.dataSource.query(`SELECT max(sequence)::text AS sequence FROM keyhold_audit_checkpoints`);
    if (Number(latest?.sequence ?? 0) >= sequence) {
      this.lastSigned = Math.max(this.lastSigned, Number(latest.sequence));
      return null;
    }
    const signing = await this.keys.signing();
    if (!signing) return null;
    const checkpoint = signCheckpoint(signing.privateKeyDer, {
      sequence,
      headHash: head.hash as string,
      time: this.now().toISOString(),
      keyFingerprint: signing.fingerprint,
    });
    await this.dataSource.query(
      `INSERT INTO keyhold_audit_checkpoints (sequence, head_hash, time, key_fingerprint, signature) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (sequence) DO NOTHING`,
      [checkpoint.sequence, checkpoint.headHash, checkpoint.time, checkpoint.keyFingerprint, checkpoint.signature],
    );
    this.lastSigned = sequence;
    this.logger.log({ msg: 'audit checkpoint signed', sequence });
    return checkpoint;
  }
}
