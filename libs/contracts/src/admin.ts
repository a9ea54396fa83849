import { z } from 'zod';
import { keyNameSchema } from './keys';

/** The admin plane's wire schemas, shared by the server and the console. */
export const ADMIN_ROLES = ['admin', 'operator', 'auditor'] as const;
export type AdminRole = (typeof ADMIN_ROLES)[number];

const tokenSchema = z.string().min(10).max(200).regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'not a Keyhold link token');
const adminNameSchema = z.string().trim().min(1).max(100);
/** A WebAuthn response as @simplewebauthn/browser produces it; verified in depth by the ceremony. */
const webauthnResponseSchema = z
  .object({ id: z.string().min(1).max(1024), rawId: z.string().max(1024), type: z.literal('public-key'), response: z.record(z.string(), z.unknown()) })
  .passthrough();

export const enrolmentOptionsRequestSchema = z.object({ token: tokenSchema, name: adminNameSchema.optional() }).strict();
export const enrolmentRequestSchema = z
  .object({ token: tokenSchema, response: webauthnResponseSchema, passkeyName: z.string().trim().min(1).max(100).optional() })
  .strict();
export const signInRequestSchema = z.object({ response: webauthnResponseSchema }).strict();
export const recoveryRequestSchema = z.object({ name: adminNameSchema, code: z.string().min(10).max(64) }).strict();
export const addPasskeyRequestSchema = z.object({ response: webauthnResponseSchema, name: z.string().trim().min(1).max(100) }).strict();
/**
 * What one's own session may do only with a step-up: a fresh, user-verified assertion by one of one's own
 * passkeys over a single-use challenge made for that action (`POST /api/v1/me/step-up/options`). A session
 * alone (a stolen cookie) can then neither add a passkey, nor remove one, nor replace the recovery codes.
 */
export const STEP_UP_ACTIONS = ['add-passkey', 'remove-passkey', 'recovery-codes'] as const;
export type StepUpAction = (typeof STEP_UP_ACTIONS)[number];
/** A removal's step-up names the passkey it removes: a confirmation to remove one passkey cannot remove another. */
export const stepUpOptionsRequestSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('add-passkey') }).strict(),
  z.object({ action: z.literal('remove-passkey'), passkeyId: z.uuid() }).strict(),
  z.object({ action: z.literal('recovery-codes') }).strict(),
]);
export type StepUpOptionsRequest = z.infer<typeof stepUpOptionsRequestSchema>;
/**
 * `stepUp`: the assertion answering the step-up options of this action (used up by the request). Needed, but
 * optional here: a request without one is answered 401 (this action needs a passkey confirmation), as is a
 * step-up that is wrong, used or expired, rather than 400.
 */
export const stepUpRequestSchema = z.object({ stepUp: webauthnResponseSchema.optional() }).strict();
/** The step-up is given for the registration options: no passkey is registered without one. */
export const addPasskeyOptionsRequestSchema = stepUpRequestSchema;
export const removePasskeyRequestSchema = stepUpRequestSchema;
export const regenerateRecoveryCodesRequestSchema = stepUpRequestSchema;
export const renamePasskeyRequestSchema = z.object({ name: z.string().trim().min(1).max(100) }).strict();
export const inviteRequestSchema = z.object({ role: z.enum(ADMIN_ROLES), name: adminNameSchema.optional() }).strict();
export const changeRoleRequestSchema = z.object({ role: z.enum(ADMIN_ROLES) }).strict();
/** An invitation's lookup id: the part of its link token before the dot (12 random bytes, base64url), never the secret. */
export const invitationIdSchema = z.string().regex(/^[A-Za-z0-9_-]{16}$/, 'not an invitation id (16 characters of A-Z a-z 0-9 - _)');
export const invitationParamsSchema = z.object({ id: invitationIdSchema }).strict();
export const adminKeyNameParamSchema = keyNameSchema;

export interface AdminView {
  id: string;
  name: string;
  role: AdminRole;
  createdAt: string;
}

export interface PasskeyView {
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
}

export interface SessionView {
  admin: AdminView;
  csrfToken: string;
  expiresAt: string;
}

/** 397 days (24 × 397 hours), the most a public TLS certificate may be valid; a literal, so the console's copy is checked. */
export const MAX_CERTIFICATE_VALIDITY_HOURS = 9528;
export const issueCertificateRequestSchema = z
  .object({
    identity: z.string().min(1).max(512).regex(/^[a-z][a-z0-9+.-]*:\/\/[\x21-\x7e]+$/i, 'a URI such as spiffe://prod/ns/payments/sa/api'),
    validityHours: z.number().int().min(1).max(MAX_CERTIFICATE_VALIDITY_HOURS).optional(),
    csr: z.string().min(100).max(16_384).optional(),
  })
  .strict();
export const revokeCertificateRequestSchema = z.object({ reason: z.string().max(256).optional() }).strict();

/** The most approvals a sensitive operation can be set to need. */
export const MAX_QUORUM = 10;
/** Sensitive operations: they need the requester's fresh passkey assertion and, with a quorum, M admins'. */
export const sensitiveOperationSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('destroy-key-now'), key: keyNameSchema }).strict(),
  z.object({ kind: z.literal('destroy-version-now'), key: keyNameSchema, version: z.number().int().min(1) }).strict(),
  z.object({ kind: z.literal('remove-admin'), adminId: z.uuid() }).strict(),
  /** Granting or taking away the admin role (operator and auditor swap without an approval). */
  z.object({ kind: z.literal('set-admin-role'), adminId: z.uuid(), role: z.enum(ADMIN_ROLES) }).strict(),
  z.object({ kind: z.literal('set-quorum'), approvals: z.number().int().min(1).max(MAX_QUORUM) }).strict(),
  z
    .object({
      kind: z.literal('shorten-destruction-window'),
      key: keyNameSchema,
      version: z.number().int().min(1).optional(),
      destroyAt: z.iso.datetime({ offset: true }),
    })
    .strict(),
  z.object({ kind: z.literal('remove-passkey'), adminId: z.uuid(), passkeyId: z.uuid() }).strict(),
  z.object({ kind: z.literal('seal') }).strict(),
  z.object({ kind: z.literal('rotate-master-key') }).strict(),
  z.object({ kind: z.literal('retire-master-key-version'), version: z.number().int().min(1).max(2_147_483_647) }).strict(),
  /** Removes the audit records through a signed checkpoint (docs/audit.md, retention). */
  z.object({ kind: z.literal('prune-audit-records'), throughSequence: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER) }).strict(),
  /** A standing retention: Keyhold prunes records older than `days` by itself (null: only by request). */
  z.object({ kind: z.literal('set-audit-retention'), days: z.number().int().min(1).max(36_500).nullable() }).strict(),
]);
/** One Shamir unseal share, as kmsctl init printed it. */
export const unsealShareRequestSchema = z.object({ share: z.string().min(1).max(512) }).strict();

/** `GET /api/v1/seal` and every share submission: whether Keyhold is sealed and how far unsealing got. */
export interface SealStatusView {
  sealed: boolean;
  /** How the master key is protected: shamir, passphrase-file, pkcs11 or development-file. */
  protection: string;
  /** Shamir only: shares needed, shares issued, shares received so far (held in memory only). */
  threshold: number | null;
  shares: number | null;
  received: number;
}
export const approvalRequestSchema = z.object({ response: webauthnResponseSchema }).strict();

/** A sensitive operation, exactly as requested and signed. */
export type SensitiveOperation = z.infer<typeof sensitiveOperationSchema>;
/**
 * `executing`: approved and claimed, running now; one that stays so was interrupted (it never runs twice).
 * `interrupted`: closed by an admin after staying `executing` past the grace period; it never runs again, and
 * whether its effect took place is to be checked (it may be requested again).
 */
export type OperationStatus = 'pending' | 'executing' | 'executed' | 'rejected' | 'expired' | 'failed' | 'interrupted';

export interface PendingOperationView {
  id: string;
  operation: SensitiveOperation;
  /** The requesting administrator's id. */
  requestedBy: string;
  requiredApprovals: number;
  approvals: Array<{ adminId: string; approvedAt: string }>;
  status: OperationStatus;
  createdAt: string;
  expiresAt: string;
  /** When the approval that completed the quorum claimed it to run (status `executing`); null before. */
  claimedAt: string | null;
  /**
   * While `executing`: from when an admin may mark it interrupted (`POST /api/v1/operations/{id}/mark-interrupted`),
   * the claim plus the grace period; null otherwise.
   */
  interruptibleAt: string | null;
  /**
   * What the executed operation returned, `{ error: { code, message } }` when it failed, or
   * `{ interrupted: { message, markedBy } }` when an admin marked it interrupted.
   */
  result: unknown;
  /** The WebAuthn challenge every approval signs: a hash of the canonical operation. */
  challenge: string;
}

export interface OperationListView {
  operations: PendingOperationView[];
  quorum: number;
}

/** A pending operation with the options of the passkey prompt whose assertion approves it. */
export interface OperationWithAssertionOptions {
  operation: PendingOperationView;
  assertionOptions: unknown;
}

export interface InvitationView {
  token: string;
  /** The link to hand to the invitee; the token is in its fragment. */
  link: string;
  role: AdminRole;
  expiresAt: string;
}

/**
 * An invitation nobody used yet and that has not expired (`GET /api/v1/admins/invitations`): its lookup id and
 * what it grants, never the token, its secret part or the secret's hash.
 */
export const openInvitationViewSchema = z
  .object({
    id: invitationIdSchema,
    role: z.enum(ADMIN_ROLES),
    /** The name the inviter preset for the new administrator, or null (the invitee chooses it). */
    name: z.string().nullable(),
    /** The inviting administrator's id. */
    createdBy: z.uuid(),
    createdAt: z.iso.datetime({ offset: true }),
    expiresAt: z.iso.datetime({ offset: true }),
  })
  .strict();
export type OpenInvitationView = z.infer<typeof openInvitationViewSchema>;
export const openInvitationListViewSchema = z.object({ invitations: z.array(openInvitationViewSchema) }).strict();
export type OpenInvitationListView = z.infer<typeof openInvitationListViewSchema>;

/** A one-time enrolment token for the administrator who proved a recovery code. */
export interface RecoveryTokenView {
  token: string;
  expiresAt: string;
}

export interface IssuedCertificateView {
  serialNumber: string;
  identity: string;
  fingerprintSha256: string;
  notBefore: string;
  notAfter: string;
  issuedAt: string;
  revokedAt: string | null;
  revocationReason: string | null;
}

/** An issued certificate; a generated private key is in this answer only, never stored. */
export interface IssuedCertificateResult {
  certificatePem: string;
  privateKeyPem: string | null;
  caCertificatePem: string;
  certificate: IssuedCertificateView;
}
