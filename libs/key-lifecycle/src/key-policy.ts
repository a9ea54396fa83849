import { addDays } from './clock';
import { type Key, type KeyVersion, findVersion } from './key';
import { KeyLifecycleError } from './key-lifecycle-error';

export const MIN_PENDING_DAYS = 7;
export const MAX_PENDING_DAYS = 30;
export const DEFAULT_PENDING_DAYS = 30;

/**
 * Pure decisions about a key's lifecycle. Each function takes the current state and the time and returns
 * the next state, or throws KeyLifecycleError; persistence applies the result inside a transaction that
 * holds the key's row lock, so two decisions never interleave.
 */

/** The version new ciphertexts are made under; refuses unless key and primary version are enabled. */
export function versionForEncryption(key: Key): KeyVersion {
  if (key.state !== 'enabled') {
    throw new KeyLifecycleError('INVALID_STATE', `key '${key.name}' is ${key.state}; enable it to encrypt`);
  }
  const primary = findVersion(key, key.primaryVersion);
  if (!primary || primary.state !== 'enabled') {
    throw new KeyLifecycleError('INVALID_STATE', `primary version of key '${key.name}' is not enabled; rotate the key`);
  }
  return primary;
}

/** Whether a ciphertext under `version` may be decrypted now; throws the wire code that explains why not. */
export function versionForDecryption(key: Key, version: number): KeyVersion {
  const found = findVersion(key, version);
  if (!found) {
    throw new KeyLifecycleError('INVALID_CIPHERTEXT', `key '${key.name}' has no version ${version}`);
  }
  if (found.state === 'destroyed') {
    throw new KeyLifecycleError('KEY_VERSION_DESTROYED', `version ${version} of key '${key.name}' is destroyed`);
  }
  if (key.state !== 'enabled') {
    throw new KeyLifecycleError('INVALID_STATE', `key '${key.name}' is ${key.state}; enable it to decrypt`);
  }
  if (found.state !== 'enabled') {
    throw new KeyLifecycleError(
      'KEY_VERSION_DISABLED',
      `version ${version} of key '${key.name}' is ${found.state.replace('_', ' ')}`,
    );
  }
  if (version < key.minDecryptionVersion) {
    throw new KeyLifecycleError(
      'KEY_VERSION_DISABLED',
      `version ${version} of key '${key.name}' is below its minDecryptionVersion ${key.minDecryptionVersion}`,
    );
  }
  return found;
}

export function nextRotationAfter(from: Date, rotationPeriodDays: number | null): Date | null {
  return rotationPeriodDays === null ? null : addDays(from, rotationPeriodDays);
}

export interface NewKeyInput {
  id: string;
  name: string;
  algorithm: Key['algorithm'];
  description?: string | null;
  rotationPeriodDays?: number | null;
  labels?: Record<string, string>;
}

export function createKey(input: NewKeyInput, now: Date): Key {
  const rotationPeriodDays = input.rotationPeriodDays ?? null;
  return {
    id: input.id,
    name: input.name,
    algorithm: input.algorithm,
    description: input.description ?? null,
    state: 'enabled',
    primaryVersion: 1,
    minDecryptionVersion: 1,
    rotationPeriodDays,
    nextRotationAt: nextRotationAfter(now, rotationPeriodDays),
    destroyAt: null,
    labels: input.labels ?? {},
    createdAt: now,
    updatedAt: now,
    versions: [{ version: 1, state: 'enabled', createdAt: now, destroyAt: null, destroyedAt: null }],
  };
}

/**
 * Versions a key may hold that are not destroyed. Every instance keeps them all unwrapped in memory and loads
 * them again at each change of the key, so their number is bounded: daily rotation for 27 years, and a caller
 * allowed to rotate cannot make every instance's reload arbitrarily slow.
 */
export const MAX_LIVE_VERSIONS = 10_000;

/** Adds version max+1 as the new primary. Old versions keep decrypting until disabled or destroyed. */
export function rotateKey(key: Key, now: Date): Key {
  if (key.state !== 'enabled') {
    throw new KeyLifecycleError('INVALID_STATE', `key '${key.name}' is ${key.state}; only an enabled key rotates`);
  }
  const live = key.versions.filter((v) => v.state !== 'destroyed').length;
  if (live >= MAX_LIVE_VERSIONS) {
    throw new KeyLifecycleError(
      'INVALID_STATE',
      `key '${key.name}' has ${live} versions that are not destroyed (at most ${MAX_LIVE_VERSIONS}); destroy old ones before rotating again`,
    );
  }
  const version = Math.max(...key.versions.map((v) => v.version)) + 1;
  return {
    ...key,
    primaryVersion: version,
    nextRotationAt: nextRotationAfter(now, key.rotationPeriodDays),
    updatedAt: now,
    versions: [...key.versions, { version, state: 'enabled', createdAt: now, destroyAt: null, destroyedAt: null }],
  };
}

export interface KeyUpdate {
  description?: string | null;
  rotationPeriodDays?: number | null;
  minDecryptionVersion?: number;
  labels?: Record<string, string>;
}

export function updateKey(key: Key, update: KeyUpdate, now: Date): Key {
  if (key.state === 'destroyed') {
    throw new KeyLifecycleError('INVALID_STATE', `key '${key.name}' is destroyed`);
  }
  if (update.minDecryptionVersion !== undefined && update.minDecryptionVersion > key.primaryVersion) {
    throw new KeyLifecycleError(
      'VALIDATION_FAILED',
      `minDecryptionVersion ${update.minDecryptionVersion} is above the primary version ${key.primaryVersion}`,
    );
  }
  let nextRotationAt = key.nextRotationAt;
  if (update.rotationPeriodDays !== undefined) {
    // The period counts from when the primary version was made, as a person reading "every 90 days" expects.
    const primaryCreatedAt = findVersion(key, key.primaryVersion)?.createdAt ?? now;
    nextRotationAt = nextRotationAfter(primaryCreatedAt, update.rotationPeriodDays);
  }
  return {
    ...key,
    description: update.description !== undefined ? update.description : key.description,
    rotationPeriodDays: update.rotationPeriodDays !== undefined ? update.rotationPeriodDays : key.rotationPeriodDays,
    minDecryptionVersion: update.minDecryptionVersion ?? key.minDecryptionVersion,
    labels: update.labels ?? key.labels,
    nextRotationAt,
    updatedAt: now,
  };
}

export function disableKey(key: Key, now: Date): Key {
  assertKeyIn(key, ['enabled', 'disabled'], 'disable');
  return { ...key, state: 'disabled', updatedAt: now };
}

export function enableKey(key: Key, now: Date): Key {
  assertKeyIn(key, ['enabled', 'disabled'], 'enable');
  return { ...key, state: 'enabled', updatedAt: now };
}

export function validatePendingDays(pendingDays: number | undefined): number {
  const days = pendingDays ?? DEFAULT_PENDING_DAYS;
  if (!Number.isInteger(days) || days < MIN_PENDING_DAYS || days > MAX_PENDING_DAYS) {
    throw new KeyLifecycleError(
      'VALIDATION_FAILED',
      `pendingDays must be a whole number from ${MIN_PENDING_DAYS} to ${MAX_PENDING_DAYS}`,
    );
  }
  return days;
}

/** Nothing is destroyed at once: the key waits out its window, during which cancelling brings it back disabled. */
export function scheduleKeyDestruction(key: Key, pendingDays: number | undefined, now: Date): Key {
  assertKeyIn(key, ['enabled', 'disabled'], 'schedule destruction of');
  return {
    ...key,
    state: 'pending_destruction',
    destroyAt: addDays(now, validatePendingDays(pendingDays)),
    nextRotationAt: key.nextRotationAt,
    updatedAt: now,
  };
}

export function cancelKeyDestruction(key: Key, now: Date): Key {
  assertKeyIn(key, ['pending_destruction'], 'cancel destruction of');
  return { ...key, state: 'disabled', destroyAt: null, updatedAt: now };
}

/** The key's window has ended: the key and every version become tombstones. */
export function destroyKey(key: Key, now: Date): Key {
  assertKeyIn(key, ['pending_destruction'], 'destroy');
  if (!key.destroyAt || key.destroyAt.getTime() > now.getTime()) {
    throw new KeyLifecycleError('INVALID_STATE', `key '${key.name}' is not due for destruction yet`);
  }
  return {
    ...key,
    state: 'destroyed',
    nextRotationAt: null,
    updatedAt: now,
    versions: key.versions.map((v) =>
      v.state === 'destroyed' ? v : { ...v, state: 'destroyed', destroyAt: v.destroyAt ?? key.destroyAt, destroyedAt: now },
    ),
  };
}

export function disableVersion(key: Key, version: number, now: Date): Key {
  const target = requireVersion(key, version);
  assertVersionIn(key, target, ['enabled', 'disabled'], 'disable');
  assertNotPrimary(key, target, 'disable');
  return withVersion(key, { ...target, state: 'disabled' }, now);
}

export function enableVersion(key: Key, version: number, now: Date): Key {
  const target = requireVersion(key, version);
  assertVersionIn(key, target, ['enabled', 'disabled'], 'enable');
  return withVersion(key, { ...target, state: 'enabled' }, now);
}

/** The primary version cannot be scheduled: rotate first, so that encryption always has a usable version. */
export function scheduleVersionDestruction(key: Key, version: number, pendingDays: number | undefined, now: Date): Key {
  assertKeyIn(key, ['enabled', 'disabled'], 'schedule destruction of a version of');
  const target = requireVersion(key, version);
  assertVersionIn(key, target, ['enabled', 'disabled'], 'schedule destruction of');
  assertNotPrimary(key, target, 'schedule destruction of');
  const destroyAt = addDays(now, validatePendingDays(pendingDays));
  return withVersion(key, { ...target, state: 'pending_destruction', destroyAt }, now);
}

export function cancelVersionDestruction(key: Key, version: number, now: Date): Key {
  const target = requireVersion(key, version);
  assertVersionIn(key, target, ['pending_destruction'], 'cancel destruction of');
  return withVersion(key, { ...target, state: 'disabled', destroyAt: null }, now);
}

export function destroyVersion(key: Key, version: number, now: Date): Key {
  const target = requireVersion(key, version);
  assertVersionIn(key, target, ['pending_destruction'], 'destroy');
  if (!target.destroyAt || target.destroyAt.getTime() > now.getTime()) {
    throw new KeyLifecycleError('INVALID_STATE', `version ${version} of key '${key.name}' is not due for destruction yet`);
  }
  return withVersion(key, { ...target, state: 'destroyed', destroyedAt: now }, now);
}

export function isRotationDue(key: Key, now: Date): boolean {
  return key.state === 'enabled' && key.nextRotationAt !== null && key.nextRotationAt.getTime() <= now.getTime();
}

/** Versions whose own destruction window has ended (a key that is due is handled by destroyKey instead). */
export function versionsDueForDestruction(key: Key, now: Date): KeyVersion[] {
  return key.versions.filter(
    (v) => v.state === 'pending_destruction' && v.destroyAt !== null && v.destroyAt.getTime() <= now.getTime(),
  );
}

export function isKeyDestructionDue(key: Key, now: Date): boolean {
  return key.state === 'pending_destruction' && key.destroyAt !== null && key.destroyAt.getTime() <= now.getTime();
}

function requireVersion(key: Key, version: number): KeyVersion {
  const found = findVersion(key, version);
  if (!found) {
    throw new KeyLifecycleError('VALIDATION_FAILED', `key '${key.name}' has no version ${version}`);
  }
  return found;
}

function withVersion(key: Key, replacement: KeyVersion, now: Date): Key {
  return {
    ...key,
    updatedAt: now,
    versions: key.versions.map((v) => (v.version === replacement.version ? replacement : v)),
  };
}

function assertKeyIn(key: Key, states: readonly Key['state'][], action: string): void {
  if (!states.includes(key.state)) {
    throw new KeyLifecycleError('INVALID_STATE', `cannot ${action} key '${key.name}' while it is ${key.state}`);
  }
}

function assertVersionIn(key: Key, target: KeyVersion, states: readonly KeyVersion['state'][], action: string): void {
  if (!states.includes(target.state)) {
    throw new KeyLifecycleError(
      'INVALID_STATE',
      `cannot ${action} version ${target.version} of key '${key.name}' while it is ${target.state}`,
    );
  }
}

function assertNotPrimary(key: Key, target: KeyVersion, action: string): void {
  if (target.version === key.primaryVersion) {
    throw new KeyLifecycleError(
      'INVALID_STATE',
      `cannot ${action} version ${target.version}: it is the primary version of key '${key.name}'; rotate first`,
    );
  }
}

/**
 * Destroys a key now, skipping its waiting window. Only ever reached through an approved operation (a quorum
 * of administrators, each signing this exact operation with a passkey).
 */
export function destroyKeyImmediately(key: Key, now: Date): Key {
  assertKeyIn(key, ['enabled', 'disabled', 'pending_destruction'], 'destroy');
  return destroyKey({ ...key, state: 'pending_destruction', destroyAt: now }, now);
}

/** Destroys one version now (never the primary one); reached only through an approved operation. */
export function destroyVersionImmediately(key: Key, version: number, now: Date): Key {
  const target = requireVersion(key, version);
  assertVersionIn(key, target, ['enabled', 'disabled', 'pending_destruction'], 'destroy');
  assertNotPrimary(key, target, 'destroy');
  return destroyVersion(withVersion(key, { ...target, state: 'pending_destruction', destroyAt: now }, now), version, now);
}

/**
 * Brings a pending destruction (of the key, or of one version) forward to `destroyAt`, which must be earlier
 * than the current date and not in the past. Only ever reached through an approved operation.
 */
export function shortenDestructionWindow(key: Key, version: number | null, destroyAt: Date, now: Date): Key {
  if (destroyAt.getTime() < now.getTime()) {
    throw new KeyLifecycleError('VALIDATION_FAILED', 'the new destruction date is in the past');
  }
  if (version === null) {
    assertKeyIn(key, ['pending_destruction'], 'shorten the destruction window of');
    if (!key.destroyAt || destroyAt.getTime() >= key.destroyAt.getTime()) {
      throw new KeyLifecycleError('VALIDATION_FAILED', 'the new destruction date must be earlier than the scheduled one');
    }
    return { ...key, destroyAt, updatedAt: now };
  }
  const target = requireVersion(key, version);
  assertVersionIn(key, target, ['pending_destruction'], 'shorten the destruction window of');
  if (!target.destroyAt || destroyAt.getTime() >= target.destroyAt.getTime()) {
    throw new KeyLifecycleError('VALIDATION_FAILED', 'the new destruction date must be earlier than the scheduled one');
  }
  return withVersion(key, { ...target, destroyAt }, now);
}
