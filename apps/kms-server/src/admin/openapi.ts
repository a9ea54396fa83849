import { z } from 'zod';
import {
  addPasskeyOptionsRequestSchema,
  addPasskeyRequestSchema,
  changeRoleRequestSchema,
  createKeyRequestSchema,
  enrolmentOptionsRequestSchema,
  enrolmentRequestSchema,
  inviteRequestSchema,
  recoveryRequestSchema,
  renamePasskeyRequestSchema,
  scheduleDestructionRequestSchema,
  signInRequestSchema,
  updateKeyRequestSchema,
  grantSchema,
  issueCertificateRequestSchema,
  revokeCertificateRequestSchema,
  sensitiveOperationSchema,
  approvalRequestSchema,
  unsealShareRequestSchema,
  auditFilterSchema,
  auditPruneRequestSchema,
  auditRetentionPolicyRequestSchema,
  auditQuerySchema,
  regenerateRecoveryCodesRequestSchema,
  removePasskeyRequestSchema,
  stepUpOptionsRequestSchema,
} from '@keyhold/contracts';

interface Route {
  method: 'get' | 'post' | 'patch' | 'delete';
  path: string;
  summary: string;
  /** `public` routes need no session; others list the roles allowed. */
  access: 'public' | string[];
  body?: z.ZodType;
  /** Query-string parameters, from a zod object schema. */
  query?: z.ZodObject;
}

const ALL = ['admin', 'operator', 'auditor'];
const CHANGE_KEYS = ['admin', 'operator'];
const AUDIT = ['admin', 'auditor'];

/** The admin API, one line a route: the source of the OpenAPI document served at /docs. */
export const ADMIN_ROUTES: Route[] = [
  { method: 'post', path: '/api/v1/enrolment/options', summary: 'Passkey registration options for a setup, invitation or recovery token', access: 'public', body: enrolmentOptionsRequestSchema },
  { method: 'post', path: '/api/v1/enrolment', summary: 'Register the passkey and use up the token; starts a session (recovery codes shown once)', access: 'public', body: enrolmentRequestSchema },
  { method: 'post', path: '/api/v1/recovery', summary: 'Use a recovery code: returns a 15-minute enrolment token for a new passkey', access: 'public', body: recoveryRequestSchema },
  { method: 'post', path: '/api/v1/session/options', summary: 'Sign-in options (discoverable credentials, user verification required)', access: 'public' },
  { method: 'post', path: '/api/v1/session', summary: 'Sign in with a passkey assertion; sets the session cookie', access: 'public', body: signInRequestSchema },
  { method: 'get', path: '/api/v1/session', summary: 'The current session and its CSRF token', access: ALL },
  { method: 'delete', path: '/api/v1/session', summary: 'Sign out', access: ALL },
  { method: 'post', path: '/api/v1/session/sign-out-everywhere', summary: 'Revoke every session of the current administrator', access: ALL },
  { method: 'get', path: '/api/v1/me/passkeys', summary: 'Your passkeys', access: ALL },
  { method: 'post', path: '/api/v1/me/step-up/options', summary: 'Step-up: assertion options (your own passkeys, user verification required) for one action, add-passkey, remove-passkey (of the passkeyId named) or recovery-codes; single-use, 5 minutes', access: ALL, body: stepUpOptionsRequestSchema },
  { method: 'post', path: '/api/v1/me/passkeys/options', summary: 'Registration options for another passkey; needs a step-up for add-passkey (`stepUp`: the assertion), used up here: one step-up, one passkey', access: ALL, body: addPasskeyOptionsRequestSchema },
  { method: 'post', path: '/api/v1/me/passkeys', summary: 'Add a passkey (answers the registration options)', access: ALL, body: addPasskeyRequestSchema },
  { method: 'patch', path: '/api/v1/me/passkeys/{id}', summary: 'Rename a passkey', access: ALL, body: renamePasskeyRequestSchema },
  { method: 'delete', path: '/api/v1/me/passkeys/{id}', summary: 'Remove a passkey (never the last one); needs a step-up for remove-passkey in the JSON body', access: ALL, body: removePasskeyRequestSchema },
  { method: 'post', path: '/api/v1/me/recovery-codes', summary: 'Replace your recovery codes (shown once); needs a step-up for recovery-codes', access: ALL, body: regenerateRecoveryCodesRequestSchema },
  { method: 'get', path: '/api/v1/admins', summary: 'Administrators', access: ALL },
  { method: 'get', path: '/api/v1/admins/invitations', summary: 'Open invitations: unused and unexpired, with role, preset name, inviter and expiry (never the token)', access: ['admin'] },
  { method: 'post', path: '/api/v1/admins/invitations', summary: 'Invite an administrator with a role (single-use link, 72 h); with a quorum above 1, operator or auditor only', access: ['admin'], body: inviteRequestSchema },
  { method: 'delete', path: '/api/v1/admins/invitations/{id}', summary: 'Revoke an unused invitation by its id (its link stops working now)', access: ['admin'] },
  { method: 'patch', path: '/api/v1/admins/{id}', summary: "Change an administrator's role; to or from admin only while the quorum is 1 (otherwise the set-admin-role operation)", access: ['admin'], body: changeRoleRequestSchema },
  { method: 'get', path: '/api/v1/keys', summary: 'Keys, with per-version usage (cursor pagination)', access: ALL },
  { method: 'post', path: '/api/v1/keys', summary: 'Create a key', access: CHANGE_KEYS, body: createKeyRequestSchema },
  { method: 'get', path: '/api/v1/keys/{name}', summary: 'A key and its versions, with encryptions counted and last use', access: ALL },
  { method: 'get', path: '/api/v1/keys/{name}/usage', summary: 'Encryptions per version per UTC day (?days=1-366, default 30)', access: ALL },
  { method: 'patch', path: '/api/v1/keys/{name}', summary: 'Update description, labels, rotation period, minDecryptionVersion', access: CHANGE_KEYS, body: updateKeyRequestSchema },
  { method: 'post', path: '/api/v1/keys/{name}/rotate', summary: 'Rotate now', access: CHANGE_KEYS },
  { method: 'post', path: '/api/v1/keys/{name}/disable', summary: 'Disable the key', access: CHANGE_KEYS },
  { method: 'post', path: '/api/v1/keys/{name}/enable', summary: 'Enable the key', access: CHANGE_KEYS },
  { method: 'post', path: '/api/v1/keys/{name}/schedule-destruction', summary: 'Schedule destruction after a 7-30 day window', access: CHANGE_KEYS, body: scheduleDestructionRequestSchema },
  { method: 'post', path: '/api/v1/keys/{name}/cancel-destruction', summary: 'Cancel a scheduled destruction (key becomes disabled)', access: CHANGE_KEYS },
  { method: 'post', path: '/api/v1/keys/{name}/versions/{version}/disable', summary: 'Disable a version', access: CHANGE_KEYS },
  { method: 'post', path: '/api/v1/keys/{name}/versions/{version}/enable', summary: 'Enable a version', access: CHANGE_KEYS },
  { method: 'post', path: '/api/v1/keys/{name}/versions/{version}/schedule-destruction', summary: 'Schedule destruction of a version', access: CHANGE_KEYS, body: scheduleDestructionRequestSchema },
  { method: 'post', path: '/api/v1/keys/{name}/versions/{version}/cancel-destruction', summary: 'Cancel destruction of a version', access: CHANGE_KEYS },
  { method: 'get', path: '/api/v1/grants', summary: 'Grants managed here (on top of the grants file)', access: ALL },
  { method: 'post', path: '/api/v1/grants', summary: 'Grant an identity pattern operations on a key pattern; applies within a second', access: ['admin'], body: grantSchema },
  { method: 'patch', path: '/api/v1/grants/{id}', summary: 'Replace a grant', access: ['admin'], body: grantSchema },
  { method: 'delete', path: '/api/v1/grants/{id}', summary: 'Delete a grant', access: ['admin'] },
  { method: 'get', path: '/api/v1/ca', summary: "Keyhold's service identity CA certificate", access: ALL },
  { method: 'get', path: '/api/v1/certificates', summary: 'Issued client certificates (filter with ?identity=)', access: ALL },
  { method: 'post', path: '/api/v1/certificates', summary: 'Issue a client certificate for a URI identity (24 h by default); a generated private key is returned once', access: ['admin'], body: issueCertificateRequestSchema },
  { method: 'post', path: '/api/v1/certificates/{serial}/revoke', summary: 'Revoke a certificate; the service listener refuses it within a second', access: ['admin'], body: revokeCertificateRequestSchema },
  { method: 'get', path: '/api/v1/operations', summary: 'Sensitive operations (pending and decided) and the quorum', access: ALL },
  { method: 'post', path: '/api/v1/operations', summary: 'Request a sensitive operation (destroy a key or version now, shorten a destruction window, remove an admin or their passkey, grant or take away the admin role, set the quorum, seal, rotate the master key, retire a master-key version); returns the passkey challenge bound to it', access: ['admin'], body: sensitiveOperationSchema },
  { method: 'get', path: '/api/v1/operations/{id}', summary: 'One operation, with the assertion options for approving it', access: ALL },
  { method: 'post', path: '/api/v1/operations/{id}/approvals', summary: 'Approve with a passkey assertion over the operation; runs it once the quorum is met', access: ['admin'], body: approvalRequestSchema },
  { method: 'post', path: '/api/v1/operations/{id}/reject', summary: 'Reject a pending operation', access: ['admin'] },
  { method: 'post', path: '/api/v1/operations/{id}/mark-interrupted', summary: 'Close an operation a crash left executing, once past the 5-minute grace period: interrupted, it never runs again', access: ['admin'] },
  { method: 'get', path: '/api/v1/seal', summary: 'Seal status: sealed, protection, and for Shamir the threshold, share count and shares received', access: 'public' },
  { method: 'post', path: '/api/v1/seal/shares', summary: 'Submit one Shamir unseal share (rate-limited per address; held in memory only, cleared after use or 10 minutes); unseals at the threshold', access: 'public', body: unsealShareRequestSchema },
  { method: 'post', path: '/api/v1/seal', summary: 'Seal again: requests the `seal` sensitive operation, which runs once approved with passkey assertions', access: ['admin'] },
  { method: 'get', path: '/api/v1/master-key', summary: 'Master-key versions (active, retiring, retired), rows per version and target, rows left to rewrap, the rewrap job', access: ALL },
  { method: 'post', path: '/api/v1/master-key/rotate', summary: 'Rotate the master key: requests the `rotate-master-key` sensitive operation; once approved a new version wraps new material and everything is rewrapped in the background', access: ['admin'] },
  { method: 'post', path: '/api/v1/master-key/versions/{version}/retire', summary: 'Retire a master-key version: requests `retire-master-key-version`; refused while any row still references it; deletes its sealed key', access: ['admin'] },
  { method: 'get', path: '/api/v1/audit/records', summary: 'Audit records in sequence order, filtered by time range, actor, key, operation, outcome or sequence range; cursor paging (docs/audit.md)', access: AUDIT, query: auditQuerySchema },
  { method: 'get', path: '/api/v1/audit/export', summary: 'Export as JSON Lines: a header, the matching records, then the signed checkpoints in their range (to the head: every later one too); verify with `kmsctl audit verify --file`', access: AUDIT, query: auditFilterSchema },
  { method: 'get', path: '/api/v1/audit/checkpoints', summary: 'The latest signed checkpoints (sequence, chain head hash, time, Ed25519 signature; 100, or ?limit= up to 1000), the current chain head, and whether this instance signs or refused (the chain since the last checkpoint did not verify)', access: AUDIT },
  { method: 'post', path: '/api/v1/audit/checkpoints', summary: 'Sign a checkpoint of the current chain head now, after re-verifying the chain since the last one (409 INVALID_STATE when it does not verify: nothing is signed)', access: AUDIT },
  { method: 'get', path: '/api/v1/audit/retention', summary: 'Audit retention: the minimum retention and its cutoff, the latest signed prune, the first record kept, and the latest checkpoints a prune may go through now', access: AUDIT },
  { method: 'post', path: '/api/v1/audit/prune', summary: 'Audit retention: requests `prune-audit-records` (`{throughSequence}`, a signed checkpoint older than the minimum retention); once approved the records through it are re-verified, removed with the checkpoints before it, and replaced by a signed prune that verification starts from', access: ['admin'], body: auditPruneRequestSchema },
  { method: 'post', path: '/api/v1/audit/retention-policy', summary: 'Audit retention: requests `set-audit-retention` (`{days}`, at least the minimum retention; null ends it); once approved, every instance prunes the records older than that by itself, hourly, through the latest checkpoint old enough, recorded as by system:retention', access: ['admin'], body: auditRetentionPolicyRequestSchema },
  { method: 'get', path: '/api/v1/audit/public-key', summary: 'The Ed25519 public key that signs audit checkpoints (PEM) and its fingerprint', access: AUDIT },
];

const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' }, requestId: { type: 'string' } },
    },
  },
};

/** OpenAPI 3.1 for the admin listener, generated from ADMIN_ROUTES and the contracts' zod schemas. */
export function adminOpenApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of ADMIN_ROUTES) {
    const parameters = [...route.path.matchAll(/\{(\w+)\}/g)].map((match) => ({
      name: match[1],
      in: 'path',
      required: true,
      schema: { type: match[1] === 'version' ? 'integer' : 'string' },
    }));
    for (const [name, schema] of Object.entries(route.query?.shape ?? {})) {
      parameters.push({ name, in: 'query', required: false, schema: z.toJSONSchema(schema as z.ZodType, { io: 'input', unrepresentable: 'any' }) as { type: string } });
    }
    paths[route.path] ??= {};
    paths[route.path][route.method] = {
      summary: route.summary,
      description:
        route.access === 'public'
          ? 'No session needed. Rate-limited per source address.'
          : `Session cookie required; roles: ${route.access.join(', ')}.${route.method === 'get' ? '' : ' Send the x-csrf-token header.'}`,
      security: route.access === 'public' ? [] : [{ session: [] }],
      parameters,
      ...(route.body
        ? { requestBody: { required: true, content: { 'application/json': { schema: z.toJSONSchema(route.body, { io: 'input', unrepresentable: 'any' }) } } } }
        : {}),
      responses: {
        '200': { description: 'OK' },
        default: { description: 'Error', content: { 'application/json': { schema: errorSchema } } },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Keyhold admin API',
      version: '1',
      description:
        'The admin plane: passkey-only administrators, sessions, roles and the key lifecycle. Served on the admin listener only; service certificates open nothing here.',
    },
    components: { securitySchemes: { session: { type: 'apiKey', in: 'cookie', name: '__Host-keyhold_session' } } },
    paths,
  };
}
