import type { AdminRole, Operation } from '@keyhold/contracts';

// Values the console needs at run time. @keyhold/contracts' index also carries the zod schemas, which the console must
// not bundle, so only its types are imported; `satisfies` makes a value the contracts no longer accept a compile error.

export const ADMIN_ROLES = ['admin', 'operator', 'auditor'] as const satisfies readonly AdminRole[];

export const OPERATIONS = [
  'encrypt',
  'decrypt',
  'reencrypt',
  'datakey',
  'wrap',
  'unwrap',
  'create',
  'rotate',
  'manage',
  'read',
  'random',
] as const satisfies readonly Operation[];

export const MIN_PENDING_DAYS = 7;
export const MAX_PENDING_DAYS = 30;
export const MAX_ROTATION_PERIOD_DAYS = 3650;
export const MAX_CERTIFICATE_VALIDITY_HOURS = 24 * 397;
export const MAX_QUORUM = 10;
