import { Logger } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { type AuditCheckpointSigningView, auditCheckpointFromRow } from '@keyhold/contracts';
import { type AuditChainPoint, type AuditCheckpoint, GENESIS_HASH, signCheckpoint, verifyCheckpointSignature } from '@keyhold/crypto-core';
import type { AuditKeys } from './audit-keys';
import { CHAIN_VERIFY_PAGE, chainVerifiesInDatabase, verifyStoredChain } from './stored-chain';

/** The chain since the last checkpoint did not verify: nothing was signed. */
export class CheckpointRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointRefusedError';
  }
}

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
 *
 * It signs only a head it has verified: the records since the latest signed checkpoint (whose signature it
 * checks) are re-hashed up to the head (by Postgres; by Keyhold too when that fails, to name the first broken
 * link), and the head must be that last hash. Otherwise, records were rewritten, deleted or added behind
 * Keyhold's back: it refuses, logs an error and reports the refusal in `signingStatus()`
 * (GET /api/v1/audit/checkpoints) until it signs again. The work is bounded by the records since the latest
 * checkpoint.
 */
export class AuditCheckpointer {
  private readonly logger = new Logger('AuditCheckpointer');
  private timer: NodeJS.Timeout | null = null;
  private lastSigned = 0;
  private running: Promise<AuditCheckpoint | null> | null = null;
  private refusal: AuditCheckpointSigningView['refusal'] = null;
  /** The last record this instance's group commit wrote, as it wrote it: the database must still hold it. */
  private witnessed: AuditChainPoint | null = null;

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

  /**
   * Called after every append of this instance (with the last record, once committed): signs once enough records
   * have piled up.
   */
  noticeHead(headSequence: number, committed: AuditChainPoint | null = null): void {
    if (committed && committed.sequence > (this.witnessed?.sequence ?? 0)) this.witnessed = committed;
    if (this.policy.everyRecords > 0 && headSequence - this.lastSigned >= this.policy.everyRecords && !this.running) {
      void this.checkpoint().catch(() => undefined);
    }
  }

  /** Signs the current head now (null when sealed, or nothing new since the last checkpoint). */
  checkpoint(): Promise<AuditCheckpoint | null> {
    this.running ??= this.sign().finally(() => (this.running = null));
    return this.running;
  }

  /** Whether the latest attempt signed, or was refused (and why): what the admin API shows. */
  signingStatus(): AuditCheckpointSigningView {
    return { status: this.refusal ? 'refused' : 'ok', refusal: this.refusal };
  }

  private async sign(): Promise<AuditCheckpoint | null> {
    // Taken before the head is read: what this instance committed is then at or before that head.
    const witnessed = this.witnessed;
    // Head and latest checkpoint in one statement (one snapshot): a checkpoint is only ever signed at a head
    // that was committed, so in one snapshot the head is never behind the latest checkpoint unless rewound.
    const [row] = await this.dataSource.query(
      `SELECT h.sequence::text AS head_sequence, h.hash AS head_hash_now, c.*
         FROM keyhold_audit_chain_head h
         LEFT JOIN LATERAL (SELECT * FROM keyhold_audit_checkpoints ORDER BY sequence DESC LIMIT 1) c ON true
        WHERE h.id = 1`,
    );
    const head: AuditChainPoint = { sequence: Number(row?.head_sequence ?? 0), hash: row?.head_hash_now as string };
    const latest = row?.sequence === null || row?.sequence === undefined ? null : auditCheckpointFromRow(row);
    if (latest && latest.sequence > head.sequence) {
      this.lastSigned = Math.max(this.lastSigned, latest.sequence);
      return this.refuse(head, latest.sequence, `the chain head #${head.sequence} is behind the signed checkpoint #${latest.sequence}: records after #${head.sequence} were deleted and the head rewound`);
    }
    if (witnessed && witnessed.sequence > head.sequence) {
      return this.refuse(head, latest?.sequence ?? 0, `the chain head #${head.sequence} is behind #${witnessed.sequence}, which this instance wrote: records were deleted and the head rewound`);
    }
    if (head.sequence === 0) return null;
    if (latest && latest.sequence === head.sequence) {
      this.lastSigned = Math.max(this.lastSigned, latest.sequence);
      if (latest.headHash !== head.hash) return this.refuse(head, latest.sequence, `the chain head #${head.sequence} does not match the checkpoint signed at that sequence`);
      return null;
    }
    const signing = await this.keys.signing();
    if (!signing) return null;
    if (latest && !verifyCheckpointSignature(signing.publicKeyPem, latest)) {
      return this.refuse(head, latest.sequence, `the latest checkpoint #${latest.sequence} does not verify under the audit public key`);
    }
    const from = latest ? { sequence: latest.sequence, hash: latest.headHash } : { sequence: 0, hash: GENESIS_HASH };
    const broken = await this.verifySince(from, head, witnessed && witnessed.sequence > from.sequence ? witnessed : null);
    if (broken) return this.refuse(head, latest?.sequence ?? 0, broken);
    const checkpoint = signCheckpoint(signing.privateKeyDer, {
      sequence: head.sequence,
      headHash: head.hash,
      time: this.now().toISOString(),
      keyFingerprint: signing.fingerprint,
    });
    await this.dataSource.query(
      `INSERT INTO keyhold_audit_checkpoints (sequence, head_hash, time, key_fingerprint, signature) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (sequence) DO NOTHING`,
      [checkpoint.sequence, checkpoint.headHash, checkpoint.time, checkpoint.keyFingerprint, checkpoint.signature],
    );
    this.lastSigned = head.sequence;
    this.refusal = null;
    this.logger.log({ msg: 'audit checkpoint signed', sequence: head.sequence });
    return checkpoint;
  }

  /**
   * Re-verifies the records after `from` (a signed checkpoint, or the genesis) up to `head`; the reason it fails, or
   * null. A chain rewritten after `from` and re-hashed consistently verifies as a chain, but not through `witnessed`,
   * the last record this instance wrote (when there is one since `from`): the hash there commits to every record
   * before it.
   */
  private async verifySince(from: AuditChainPoint, head: AuditChainPoint, witnessed: AuditChainPoint | null): Promise<string | null> {
    const query = (sql: string, parameters?: unknown[]) => this.dataSource.query(sql, parameters);
    // Postgres re-hashes its rows first, so that the records never cross to the thread that serves requests; only
    // when it finds something wrong does this thread walk the chain, to name the first broken link.
    if (await chainVerifiesInDatabase(query, from, head, witnessed)) return null;
    const broken = await verifyStoredChain(query, from, head, CHAIN_VERIFY_PAGE, (records) => {
      const mine = witnessed ? records.find((record) => record.sequence === witnessed.sequence) : undefined;
      return witnessed && mine && mine.hash !== witnessed.hash
        ? `record #${witnessed.sequence} is not the one this instance wrote: the chain up to it was rewritten and re-hashed`
        : null;
    });
    if (!broken) {
      this.logger.warn({ msg: 'the database-side chain check failed where the full verification passed; signing on the full verification', from: from.sequence, head: head.sequence });
    }
    return broken;
  }

  private refuse(head: AuditChainPoint, sinceSequence: number, reason: string): never {
    this.lastSigned = Math.max(this.lastSigned, head.sequence); // no retry on every append: the timer (or a request) tries again
    this.refusal = { at: this.now().toISOString(), headSequence: head.sequence, sinceSequence, reason };
    this.logger.error({ msg: 'audit checkpoint refused: the chain does not verify since the last checkpoint', headSequence: head.sequence, sinceSequence, reason });
    throw new CheckpointRefusedError(`checkpoint refused: ${reason}`);
  }
}
