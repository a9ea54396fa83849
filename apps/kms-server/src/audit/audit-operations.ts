/**
 * Operation names in audit records, by route (`METHOD /path/:param` as Fastify registers it). One table per
 * plane, so names are stable and filterable; docs/audit.md lists them. A route missing here is recorded as
 * `unknown-route`, never skipped. What Keyhold does by itself, on no route, is named in SYSTEM_OPERATIONS.
 */
export const SERVICE_OPERATIONS: Readonly<Record<string, string>> = {
  'POST /v1/keys': 'keys.create',
  'GET /v1/keys': 'keys.list',
  'GET /v1/keys/:name': 'keys.get',
  'PATCH /v1/keys/:name': 'keys.update',
  'POST /v1/keys/:name/rotate': 'keys.rotate',
  'POST /v1/keys/:name/disable': 'keys.disable',
  'POST /v1/keys/:name/enable': 'keys.enable',
  'POST /v1/keys/:name/schedule-destruction': 'keys.schedule-destruction',
  'POST /v1/keys/:name/cancel-destruction': 'keys.cancel-destruction',
  'POST /v1/keys/:name/versions/:version/disable': 'keys.version.disable',
  'POST /v1/keys/:name/versions/:version/enable': 'keys.version.enable',
  'POST /v1/keys/:name/versions/:version/schedule-destruction': 'keys.version.schedule-destruction',
  'POST /v1/keys/:name/versions/:version/cancel-destruction': 'keys.version.cancel-destruction',
  'POST /v1/keys/:name/encrypt': 'encrypt',
  'POST /v1/keys/:name/decrypt': 'decrypt',
  'POST /v1/decrypt': 'decrypt',
  'POST /v1/keys/:name/reencrypt': 'reencrypt',
  'POST /v1/keys/:name/datakey': 'datakey',
  'POST /v1/keys/:name/wrap': 'wrap',
  'POST /v1/keys/:name/unwrap': 'unwrap',
  'POST /v1/random': 'random',
  'POST /v1/keys/:name/encrypt/batch': 'encrypt',
  'POST /v1/keys/:name/decrypt/batch': 'decrypt',
  'POST /v1/keys/:name/reencrypt/batch': 'reencrypt',
};

/** Batch routes: one record per item (each is an operation with its own key version, context and outcome). */
export const BATCH_ROUTES = new Set([
  'POST /v1/keys/:name/encrypt/batch',
  'POST /v1/keys/:name/decrypt/batch',
  'POST /v1/keys/:name/reencrypt/batch',
]);

/** Health probes and metrics scrapes come every few seconds and touch no key: not operations, not recorded. */
export const UNAUDITED_SERVICE_ROUTES = new Set(['GET /v1/health', 'GET /v1/metrics']);

export const ADMIN_OPERATIONS: Readonly<Record<string, string>> = {
  'POST /api/v1/enrolment/options': 'admin.enrolment-options',
  'POST /api/v1/enrolment': 'admin.enrol',
  'POST /api/v1/recovery': 'admin.recovery',
  'POST /api/v1/session/options': 'admin.sign-in-options',
  'POST /api/v1/session': 'admin.sign-in',
  'GET /api/v1/session': 'admin.session',
  'DELETE /api/v1/session': 'admin.sign-out',
  'POST /api/v1/session/sign-out-everywhere': 'admin.sign-out-everywhere',
  'GET /api/v1/me/passkeys': 'passkeys.list',
  'POST /api/v1/me/step-up/options': 'admin.step-up-options',
  'POST /api/v1/me/passkeys/options': 'passkeys.add-options',
  'POST /api/v1/me/passkeys': 'passkeys.add',
  'PATCH /api/v1/me/passkeys/:id': 'passkeys.rename',
  'DELETE /api/v1/me/passkeys/:id': 'passkeys.remove',
  'POST /api/v1/me/recovery-codes': 'admin.recovery-codes',
  'GET /api/v1/admins': 'admins.list',
  'GET /api/v1/admins/invitations': 'admins.list-invitations',
  'POST /api/v1/admins/invitations': 'admins.invite',
  'DELETE /api/v1/admins/invitations/:id': 'admins.revoke-invitation',
  'PATCH /api/v1/admins/:id': 'admins.change-role',
  'GET /api/v1/grants': 'grants.list',
  'POST /api/v1/grants': 'grants.create',
  'PATCH /api/v1/grants/:id': 'grants.update',
  'DELETE /api/v1/grants/:id': 'grants.delete',
  'GET /api/v1/ca': 'ca.get',
  'GET /api/v1/certificates': 'certificates.list',
  'POST /api/v1/certificates': 'certificates.issue',
  'POST /api/v1/certificates/:serial/revoke': 'certificates.revoke',
  'GET /api/v1/operations': 'operations.list',
  'POST /api/v1/operations': 'operations.request',
  'GET /api/v1/operations/:id': 'operations.get',
  'POST /api/v1/operations/:id/approvals': 'operations.approve',
  'POST /api/v1/operations/:id/reject': 'operations.reject',
  'POST /api/v1/operations/:id/mark-interrupted': 'operations.mark-interrupted',
  'GET /api/v1/seal': 'seal.status',
  'POST /api/v1/seal/shares': 'seal.submit-share',
  'POST /api/v1/seal': 'seal.request',
  'GET /api/v1/master-key': 'master-key.status',
  'POST /api/v1/master-key/rotate': 'master-key.rotate-request',
  'POST /api/v1/master-key/versions/:version/retire': 'master-key.retire-request',
  'GET /api/v1/audit/records': 'audit.query',
  'GET /api/v1/audit/export': 'audit.export',
  'GET /api/v1/audit/checkpoints': 'audit.checkpoints',
  'POST /api/v1/audit/checkpoints': 'audit.checkpoint',
  'GET /api/v1/audit/public-key': 'audit.public-key',
  'GET /api/v1/audit/retention': 'audit.retention',
  'POST /api/v1/audit/prune': 'audit.prune-request',
  'POST /api/v1/audit/retention-policy': 'audit.retention-policy-request',
  'GET /api/v1/keys/:name/usage': 'keys.usage',
  // The key lifecycle on the admin plane has the service plane's names; the record's plane tells them apart.
  ...Object.fromEntries(
    Object.entries(SERVICE_OPERATIONS)
      .filter(([route]) => route.includes(' /v1/keys') && !/encrypt|decrypt|datakey|wrap|random/.test(route))
      .map(([route, operation]) => [route.replace(' /v1/', ' /api/v1/'), operation]),
  ),
};

/**
 * Changes no request asked for, recorded on the `system` plane as by `system:<job>`, each in the transaction
 * of its change. The scheduler's reuse the lifecycle's names; what a new database creates at its first unsealed
 * start is recorded as by `system:bootstrap`, once, by the instance that created it.
 */
export const SYSTEM_OPERATIONS = {
  /** A scheduled rotation (the rotation period came round). */
  rotateKey: 'keys.rotate',
  /** A key whose destruction window ended. */
  destroyKey: 'keys.destroy',
  /** A key version whose destruction window ended. */
  destroyKeyVersion: 'keys.version.destroy',
  /** The audit trail's context-HMAC and checkpoint-signing keys, created together. */
  createAuditKeys: 'audit.keys.create',
  /** The service-identity CA (its certificate is `GET /api/v1/ca`, `ca.get`). */
  createCertificateAuthority: 'ca.create',
} as const;
