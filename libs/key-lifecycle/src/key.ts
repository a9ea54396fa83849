/** The words of the key lifecycle, shared by the API, the console and audit records. */
export type KeyState = 'enabled' | 'disabled' | 'pending_destruction' | 'destroyed';
export type VersionState = KeyState;
export type KeyAlgorithm = 'aes-256-gcm';

export interface KeyVersion {
  readonly version: number;
  readonly state: VersionState;
  readonly createdAt: Date;
  readonly destroyAt: Date | null;
  readonly destroyedAt: Date | null;
}

/** A named key and every version it ever had; destroyed versions stay as tombstones. */
export interface Key {
  readonly id: string;
  readonly name: string;
  readonly algorithm: KeyAlgorithm;
  readonly description: string | null;
  readonly state: KeyState;
  readonly primaryVersion: number;
  readonly minDecryptionVersion: number;
  readonly rotationPeriodDays: number | null;
  readonly nextRotationAt: Date | null;
  readonly destroyAt: Date | null;
  readonly labels: Readonly<Record<string, string>>;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly versions: readonly KeyVersion[];
}

export function findVersion(key: Key, version: number): KeyVersion | undefined {
  return key.versions.find((v) => v.version === version);
}
