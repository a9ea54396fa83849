import type * as contracts from '@keyhold/contracts';
import type { AdminRole, Operation } from '@keyhold/contracts';

// Values the console needs at run time. @keyhold/contracts' index also carries the zod schemas, which the console must
// not bundle, so only its types are imported. Each copy is checked against them at compile time: `satisfies` makes a
// value the contracts no longer accept (or no longer equal, for a number) an error, and a list that lacks one of the
// contracts' values is an error where it is declared complete below.

/** Compiles only when T is never: where a list is declared complete, T is what it lacks. */
type NothingMissing<T extends never> = T;

export const ADMIN_ROLES = ['admin', 'operator', 'auditor'] as const satisfies readonly AdminRole[];
export type AdminRolesComplete = NothingMissing<Exclude<AdminRole, (typeof ADMIN_ROLES)[number]>>;

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
export type OperationsComplete = NothingMissing<Exclude<Operation, (typeof OPERATIONS)[number]>>;

export const MIN_PENDING_DAYS = 7 satisfies typeof contracts.MIN_PENDING_DAYS;
export const MAX_PENDING_DAYS = 30 satisfies typeof contracts.MAX_PENDING_DAYS;
export const MAX_ROTATION_PERIOD_DAYS = 3650 satisfies typeof contracts.MAX_ROTATION_PERIOD_DAYS;
export const MAX_CERTIFICATE_VALIDITY_HOURS = 9528 satisfies typeof contracts.MAX_CERTIFICATE_VALIDITY_HOURS;
export const MAX_QUORUM = 10 satisfies typeof contracts.MAX_QUORUM;
