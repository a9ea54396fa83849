import { ed25519Sign, ed25519Verify } from '../ed25519';

/** A signed statement "the chain's record `sequence` has hash `headHash`", made at `time`. */
export interface AuditCheckpoint {
  sequence: number;
  headHash: string;
  time: string;
  /** Fingerprint of the audit public key that signed (see publicKeyFingerprint). */
  keyFingerprint: string;
  /** Ed25519 signature (base64) over checkpointBytes. */
  signature: string;
}

export const AUDIT_CHECKPOINT_DOMAIN = 'keyhold.audit.checkpoint.v1';

/** What a checkpoint signs: UTF-8 JSON `[domain, sequence, headHash, time, keyFingerprint]`, no whitespace. */
export function checkpointBytes(checkpoint: Omit<AuditCheckpoint, 'signature'>): Buffer {
  return Buffer.from(
    JSON.stringify([AUDIT_CHECKPOINT_DOMAIN, checkpoint.sequence, checkpoint.headHash, checkpoint.time, checkpoint.keyFingerprint]),
    'utf8',
  );
}

export function signCheckpoint(privateKeyDer: Uint8Array, unsigned: Omit<AuditCheckpoint, 'signature'>): AuditCheckpoint {
  return { ...unsigned, signature: ed25519Sign(privateKeyDer, checkpointBytes(unsigned)).toString('base64') };
}

export function verifyCheckpointSignature(publicKeyPem: string, checkpoint: AuditCheckpoint): boolean {
  return ed25519Verify(publicKeyPem, checkpointBytes(checkpoint), Buffer.from(checkpoint.signature, 'base64'));
}
