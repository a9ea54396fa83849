import type { Key } from './key';

/** Wrapped material for one version, as the repository stores it: never the raw key. */
export interface WrappedVersionMaterial {
  readonly version: number;
  readonly wrapped: Buffer;
  readonly masterKeyVersion: number;
}

/** A unit of work over one key whose row is locked until it commits. */
export interface LockedKeyTransaction {
  /** Persists `next` (the key row and every version whose state changed), adding any material given for new versions. */
  save(next: Key, newMaterial?: readonly WrappedVersionMaterial[]): Promise<void>;
  /** Overwrites, then deletes the wrapped material of these versions and marks them destroyed: crypto-shredding. Call before `save`. */
  shredMaterial(versions: readonly number[]): Promise<void>;
}

/** Where keys live. Implementations must make `withLockedKey` serialise concurrent work on one key. */
export interface KeyRepository {
  findByName(name: string): Promise<Key | null>;
  /** Keys in name order, after `afterName` when given. */
  list(limit: number, afterName?: string): Promise<Key[]>;
  /** Inserts a new key; throws KeyExistsError when the name was ever used. */
  insert(key: Key, material: readonly WrappedVersionMaterial[]): Promise<void>;
  withLockedKey<T>(name: string, work: (key: Key, tx: LockedKeyTransaction) => Promise<T>): Promise<T | null>;
  /** Wrapped material of every version that still has some; for loading a key into the cache. */
  loadMaterial(keyId: string): Promise<WrappedVersionMaterial[]>;
  /** Names of keys with a rotation or destruction due at `now`, skipping keys locked by someone else. */
  findDueWork(now: Date, limit: number): Promise<string[]>;
}
