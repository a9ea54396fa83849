import { ed25519Sign, ed25519Verify } from '../ed25519';

/**
 * A signed statement "Keyhold pruned the records up to and including `throughSequence`, whose hash was
 * `anchorHash`", made at `time`. It is what lets a chain start after sequence 1: the first record kept must link
 * to `anchorHash`. Without it such a start is records deleted; with a forged one, the signature fails.
 */
export interface AuditPrune {
  throughSequence: number;
  anchorHash: string;
  time: string;
  /** Fingerprint of the audit public key that signed (see publicKeyFingerprint). */
  keyFingerprint: string;
  /** Ed25519 signature (base64) over pruneBytes. */
  signature: string;
}

/** Its own domain: a checkpoint's signature can never be taken for a prune's, nor the other way round. */
export const AUDIT_PRUNE_DOMAIN = 'keyhold.audit.prune.v1';

/** What a prune signs: UTF-8 JSON `[domain, throughSequence, anchorHash, time, keyFingerprint]`, no whitespace. */
export function pruneBytes(prune: Omit<AuditPrune, 'signature'>): Buffer {
  return Buffer.from(JSON.stringify([AUDIT_PRUNE_DOMAIN, prune.throughSequence, prune.anchorHash, prune.time, prune.keyFingerprint]), 'utf8');
}

export function signPrune(privateKeyDer: Uint8Array, unsigned: Omit<AuditPrune, 'signature'>): AuditPrune {
  return { ...unsigned, signature: ed25519Sign(privateKeyDer, pruneBytes(unsigned)).toString('base64') };
}

export function verifyPruneSignature(publicKeyPem: string, prune: AuditPrune): boolean {
  return ed25519Verify(publicKeyPem, pruneBytes(prune), Buffer.from(prune.signature, 'base64'));
}
