import type { KeyVersionView, KeyView } from '@keyhold/contracts';
import type { Key } from '@keyhold/key-lifecycle';
import type { VersionUsage } from '../persistence/typeorm-key.repository';

const iso = (date: Date | null): string | null => (date ? date.toISOString() : null);

/** Domain key → wire key. Usage combines what Postgres holds with what this instance has not flushed yet. */
export function toKeyView(key: Key, usageOf: (version: number) => VersionUsage): KeyView {
  const versions: KeyVersionView[] = key.versions.map((version) => {
    const usage = usageOf(version.version);
    return {
      version: version.version,
      state: version.state,
      createdAt: version.createdAt.toISOString(),
      destroyAt: iso(version.destroyAt),
      destroyedAt: iso(version.destroyedAt),
      encryptions: usage.encryptions,
      lastUsedAt: iso(usage.lastUsedAt),
    };
  });
  return {
    name: key.name,
    algorithm: key.algorithm,
    description: key.description,
    state: key.state,
    primaryVersion: key.primaryVersion,
    minDecryptionVersion: key.minDecryptionVersion,
    rotationPeriodDays: key.rotationPeriodDays,
    nextRotationAt: iso(key.nextRotationAt),
    destroyAt: iso(key.destroyAt),
    createdAt: key.createdAt.toISOString(),
    updatedAt: key.updatedAt.toISOString(),
    labels: { ...key.labels },
    encryptions: versions.reduce((total, version) => total + version.encryptions, 0),
    versions,
  };
}
