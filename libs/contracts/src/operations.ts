/** The operations a grant can give an identity on keys whose names match the grant's pattern. */
export const KEY_OPERATIONS = [
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
] as const;

export type KeyOperation = (typeof KEY_OPERATIONS)[number];

/** `POST /v1/random` names no key; it is granted as the operation `random` on any key pattern. */
export const GLOBAL_OPERATIONS = ['random'] as const;
export type GlobalOperation = (typeof GLOBAL_OPERATIONS)[number];

export type Operation = KeyOperation | GlobalOperation;
export const OPERATIONS: readonly Operation[] = [...KEY_OPERATIONS, ...GLOBAL_OPERATIONS];
